"""Uploading a finished model folder to the Hugging Face hub (``--push-to-hub``).

The one place that talks to the hub for writing. It runs only after the folder was saved
whole; any failure (no token, no network, a refused repository) is one line, and the local
folder stays as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TifError


def require_token(repo_id: str, saved_in: Path | None = None) -> None:
    """Refuse ``--push-to-hub`` without a token: before training (``saved_in`` None) and again
    before the upload."""
    from huggingface_hub import get_token

    if not (os.environ.get("HF_TOKEN") or get_token()):
        where = f"; the model is saved in {saved_in}" if saved_in else " (checked before training)"
        raise TifError(
            f"--push-to-hub {repo_id}: no Hugging Face token (run `hf auth login` or set "
            f"HF_TOKEN){where}"
        )


def push_folder(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Create ``repo_id`` if needed and upload ``folder``; return the commit's URL."""
    from huggingface_hub import HfApi

    require_token(repo_id, folder)
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=str(folder), repo_id=repo_id, commit_message="tif-unlearn run"
        )
    except Exception as err:  # network, authentication, a refused repository: one line
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise TifError(
            f"--push-to-hub {repo_id} failed ({reason}); the model is saved in {folder}"
        ) from err
    return str(getattr(commit, "commit_url", commit))
