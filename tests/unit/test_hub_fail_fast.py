"""An unknown or unreachable hub model fails in one line at once (issue 34: 52 s and 23
lines of retries before): one request, no retries; offline, the local cache decides."""

from __future__ import annotations

import httpx
import huggingface_hub
import huggingface_hub.constants
import pytest

from tif_unlearn.errors import TifError
from tif_unlearn.hub_check import check_hub_model
from tif_unlearn.models import load_model, load_tokenizer


def not_found(*args, **kwargs):
    from huggingface_hub.errors import RepositoryNotFoundError

    request = httpx.Request("GET", "https://huggingface.co/api/models/no-such/model")
    raise RepositoryNotFoundError("404 Client Error", response=httpx.Response(404, request=request))


@pytest.fixture
def online(monkeypatch):
    """The hub "reachable": HfApi.model_info answers from a stand-in, counted."""
    calls = []
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def answer_with(reply):
        def model_info(self, repo_id, **kwargs):
            calls.append(repo_id)
            return reply(repo_id, **kwargs)

        monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
        return calls

    return answer_with


def test_an_unknown_model_fails_after_one_request(online):
    calls = online(not_found)
    with pytest.raises(TifError, match="hub model 'no-such/model' not found") as info:
        load_model("no-such/model")
    assert calls == ["no-such/model"] and "\n" not in str(info.value)


def test_no_network_fails_after_one_request_without_retries(online):
    def unreachable(repo_id, **kwargs):
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    calls = online(unreachable)
    with pytest.raises(TifError, match="could not reach the hub to load 'no-such/model'"):
        load_tokenizer("no-such/model")
    assert calls == ["no-such/model"]


def test_offline_a_model_missing_from_the_cache_fails_at_once():
    # the test session runs with HF_HUB_OFFLINE=1 (conftest)
    with pytest.raises(TifError, match="not in the local cache and HF_HUB_OFFLINE is set"):
        load_model("no-such/model")


def test_a_cached_model_needs_no_request(online, monkeypatch):
    calls = online(not_found)
    monkeypatch.setattr(
        huggingface_hub, "try_to_load_from_cache", lambda *a, **k: "/cache/config.json"
    )
    check_hub_model("cached/model")
    assert calls == []
