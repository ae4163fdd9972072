"""--revision and --token reach the hub loaders (monkeypatched: no network), the token is never
written or logged, and hub data is part of a run's identity (the resume fingerprint)."""

from __future__ import annotations

import json
import logging

import pytest
import transformers

from conftest import QA_PAIRS
from tif_unlearn.cli.app import main
from tif_unlearn.config import UnlearnConfig
from tif_unlearn.config.builder import as_dict
from tif_unlearn.data.loaders import load_records
from tif_unlearn.errors import TifError
from tif_unlearn.models import load_model, load_tokenizer
from tif_unlearn.train.checkpoints import fingerprint
from tif_unlearn.train.provenance import data_record, digests

SECRET = "hf_SECRETtoken123"
HUB_MODEL = "some-owner/gated-model"


@pytest.fixture
def hub_calls(monkeypatch, tiny_model_dir) -> list[tuple[str, str, dict]]:
    """Every ``from_pretrained`` call for the hub id (class, source, keyword arguments); it
    loads the tiny model folder instead. The hub id counts as in the local cache, so the
    existence check before loading (``models.check_hub_model``) makes no request."""
    import huggingface_hub

    calls = []
    for cls in (transformers.AutoTokenizer, transformers.AutoConfig):
        _record(monkeypatch, cls, calls, tiny_model_dir)
    _record(monkeypatch, transformers.AutoModelForCausalLM, calls, tiny_model_dir)
    real_cached = huggingface_hub.try_to_load_from_cache

    def cached(repo_id, filename, **kwargs):
        if repo_id == HUB_MODEL:
            return str(tiny_model_dir / filename)
        return real_cached(repo_id, filename, **kwargs)

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", cached)
    return calls


def _record(monkeypatch, cls, calls, folder) -> None:
    real = cls.from_pretrained

    def fake(source, *args, **kwargs):
        if source != HUB_MODEL:  # a local folder, e.g. transformers' own inner calls
            return real(source, *args, **kwargs)
        calls.append((cls.__name__, str(source), dict(kwargs)))
        kwargs = {k: v for k, v in kwargs.items() if k not in ("revision", "token")}
        return real(folder, *args, **kwargs)

    monkeypatch.setattr(cls, "from_pretrained", fake)


@pytest.fixture
def hub_data(monkeypatch) -> list[dict]:
    """``datasets.load_dataset`` replaced: records its arguments, returns the QA pairs."""
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(name, config, split, **kwargs):
        calls.append({"name": name, "config": config, "split": split, **kwargs})
        return list(QA_PAIRS)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return calls


def test_revision_and_token_reach_from_pretrained(hub_calls):
    load_model(HUB_MODEL, revision="abc123", token=SECRET)
    assert {name for name, _, _ in hub_calls} == {
        "AutoTokenizer",
        "AutoConfig",
        "AutoModelForCausalLM",
    }
    for _, source, kwargs in hub_calls:
        assert source == HUB_MODEL
        assert kwargs["revision"] == "abc123" and kwargs["token"] == SECRET
    hub_calls.clear()
    load_tokenizer(HUB_MODEL, revision="abc123", token=SECRET)
    assert hub_calls[0][2]["revision"] == "abc123" and hub_calls[0][2]["token"] == SECRET


def test_no_revision_no_token_passes_neither(hub_calls):
    load_model(HUB_MODEL)
    assert all("revision" not in kw and "token" not in kw for _, _, kw in hub_calls)


def test_revision_of_a_local_model_is_refused(tiny_model_dir):
    with pytest.raises(TifError, match="hub models only"):
        load_model(str(tiny_model_dir), revision="main")


def test_token_and_revision_reach_load_dataset(hub_data):
    load_records("hf://owner/private-set@train#v2", token=SECRET)
    (call,) = hub_data
    assert call == {"name": "owner/private-set", "config": None, "split": "train"} | {
        "revision": "v2",
        "token": SECRET,
    }


def test_token_is_left_out_of_every_saved_config():
    config = UnlearnConfig(forget="f.jsonl", out="o", token=SECRET, revision="r1")
    assert as_dict(config)["token"] is None and as_dict(config)["revision"] == "r1"
    assert SECRET not in repr(config)


def test_hub_data_is_part_of_the_fingerprint():
    def identity(forget: str) -> dict:
        config = UnlearnConfig(forget=forget, out="o")
        return fingerprint(config, digests(data_record(config, ("forget",))))

    pinned = identity("hf://owner/set@train#v1")
    assert pinned["sha256"]["forget"] is not None
    assert pinned == identity("hf://owner/set@train#v1")
    assert pinned != identity("hf://owner/set@train#v2")
    assert pinned != identity("hf://owner/other@train#v1")


def test_unlearn_from_the_hub_never_writes_or_logs_the_token(
    hub_calls, hub_data, tmp_path, caplog, capsys
):
    out = tmp_path / "out"
    args = ["unlearn", "--method", "ga", "--model", HUB_MODEL, "--revision", "abc123"]
    args += ["--token", SECRET, "--forget", "hf://owner/private-set#v2", "--out", str(out)]
    with caplog.at_level(logging.DEBUG):
        assert main([*args, "--max-steps", "1", "--batch-size", "2"]) == 0
    assert hub_data[0]["token"] == SECRET and hub_data[0]["revision"] == "v2"
    model_calls = [kw for name, _, kw in hub_calls if name == "AutoModelForCausalLM"]
    assert model_calls and all(kw["token"] == SECRET for kw in model_calls)
    run = json.loads((out / "tif_run.json").read_text())
    assert run["config"]["revision"] == "abc123" and run["config"]["token"] is None
    written = "".join(p.read_text(errors="replace") for p in out.iterdir() if p.is_file())
    printed = capsys.readouterr()
    for text in (written, caplog.text, printed.out, printed.err):
        assert SECRET not in text


def test_adapter_base_reference_loads_from_any_folder(tiny_model_dir, monkeypatch):
    from tif_unlearn.models import adapter_base_reference

    monkeypatch.chdir(tiny_model_dir.parent)
    assert adapter_base_reference(tiny_model_dir.name) == str(tiny_model_dir.resolve())
    assert adapter_base_reference(HUB_MODEL) == HUB_MODEL
    assert adapter_base_reference("smollm2-135m") == "smollm2-135m"  # not its cache folder
