"""What a run records about itself in ``tif_run.json``: its inputs and their digests (hashed
once per run), the library versions, the precision and the training log."""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

import torch

from .. import __version__
from ..config.builder import as_dict
from ..data.sources import HUB_PREFIX
from .distributed import world_size


def file_digest(source: str | None) -> str | None:
    """The sha256 of a local input file; for an ``hf://`` dataset, of its name and revision
    (``hf://OWNER/NAME[/CONFIG][@SPLIT][#REVISION]``: pin ``#REVISION`` to make it exact)."""
    if source is not None and source.startswith(HUB_PREFIX):
        return hashlib.sha256(source.encode("utf-8")).hexdigest()
    if source is None or not Path(source).is_file():
        return None
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def sources_digest(sources: tuple[str, ...]) -> str | None:
    """One source's :func:`file_digest`; of several (``--data a.jsonl,b.jsonl``), the sha256 of
    their digests in order (None when one has none)."""
    found = [file_digest(source) for source in sources]
    if len(found) == 1 or None in found:
        return found[0] if len(found) == 1 else None
    return hashlib.sha256(",".join(found).encode("utf-8")).hexdigest()


def data_record(config, names: tuple[str, ...]) -> dict[str, dict]:
    """``{option: {"source": path, "sha256": digest}}`` for the input files ``names``."""
    record = {}
    for name in names:
        source = getattr(config, name, None)
        record[name] = {"source": source, "sha256": file_digest(source)}
    return record


def digests(data: dict[str, dict]) -> dict[str, str | None]:
    return {name: entry["sha256"] for name, entry in data.items()}


def library_versions() -> dict[str, str]:
    import transformers

    return {
        "tif_unlearn": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


def run_record(command: str, config, precision: str, trainer, started: float, **extra) -> dict:
    """The record every run saves; ``extra`` holds what only this command records."""
    return {
        "command": command,
        "config": as_dict(config),
        **extra,
        "precision": precision,
        "versions": library_versions(),
        "world_size": world_size(),
        "train_seconds": round(time.time() - started, 2),
        "log": trainer.state.log_history,
    }
