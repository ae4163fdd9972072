"""Is a hub model there? Checked once before loading, so that an unknown id, a missing
revision or no network fails in one line at once instead of after ``from_pretrained``'s
minute of retries (issue 34: 52 s and 23 lines of retry messages)."""

from __future__ import annotations

from .errors import TifError

HUB_TIMEOUT_S = 10


def check_hub_model(repo_id: str, revision: str | None = None, token: str | None = None) -> None:
    """Fail fast, in one line, on a hub model that cannot load, before ``from_pretrained``
    retries for a minute: a model in the local cache passes (offline too); with
    ``HF_HUB_OFFLINE`` one that is not fails; otherwise one request asks the hub whether the
    model (and revision) exists, without retries."""
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str):
        return
    if constants.is_offline_mode():
        raise TifError(f"hub model '{repo_id}' is not in the local cache and HF_HUB_OFFLINE is set")
    try:
        HfApi().model_info(repo_id, revision=revision, token=token, timeout=HUB_TIMEOUT_S)
    except RevisionNotFoundError as err:
        raise TifError(f"hub model '{repo_id}' has no revision '{revision}'") from err
    except RepositoryNotFoundError as err:  # also a private model without the right token
        raise TifError(
            f"hub model '{repo_id}' not found (a private model needs --token, $HF_TOKEN or "
            "`hf auth login`)"
        ) from err
    except Exception as err:  # no network, DNS, a proxy, a timeout: one line, no retries
        reason = (str(err).splitlines() or [type(err).__name__])[0][:200]
        raise TifError(
            f"could not reach the hub to load '{repo_id}' ({reason}); without network, use a "
            "local folder or set HF_HUB_OFFLINE=1 for a model in the local cache"
        ) from err
