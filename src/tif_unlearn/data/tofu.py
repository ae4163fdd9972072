"""TOFU (Maini et al. 2024) splits: from a local copy of the data or from the hub.

The local copy is a folder of ``<split>.json`` files (JSON Lines, except ``holdout*.json``,
which are JSON arrays; :func:`~tif_unlearn.data.sources.read_json_rows` reads both).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from tif_unlearn.data.sources import file_or_hub_rows
from tif_unlearn.errors import DataError, TifError

T = TypeVar("T")

TOFU_HUB_NAME = "locuslab/TOFU"
TOFU_DIR_ENV = "TIF_TOFU_DIR"
REPO_ROOT = Path(__file__).resolve().parents[3]  # src/tif_unlearn/data/tofu.py -> repo
_RELATIVE_DATA_DIR = Path("..", "shared", "data", "tofu")

TOFU_SPLITS: tuple[str, ...] = (
    "full",
    *(f"forget{n:02d}" for n in (1, 5, 10, 20, 30, 50, 90)),
    *(f"forget{n:02d}_perturbed" for n in (1, 5, 10)),
    *(f"retain{n}" for n in (99, 95, 90, 80, 70, 50, 10)),
    "retain_perturbed",
    "real_authors",
    "world_facts",
    "real_authors_perturbed",
    "world_facts_perturbed",
    *(f"holdout{n:02d}" for n in (1, 5, 10)),
)


def default_tofu_dir() -> Path | None:
    """Where the local TOFU copy is: ``$TIF_TOFU_DIR`` if set (returned even if missing), else
    the first existing of ``./../shared/data/tofu`` and ``<repo>/../shared/data/tofu``, else None.
    """
    env = os.environ.get(TOFU_DIR_ENV)
    if env:
        return Path(env)
    for base in (Path.cwd(), REPO_ROOT):
        candidate = (base / _RELATIVE_DATA_DIR).resolve()
        if candidate.is_dir():
            return candidate
    return None


def _check_split_name(name: str) -> None:
    if name not in TOFU_SPLITS:
        raise TifError(f"unknown TOFU split {name!r}; valid names: {', '.join(TOFU_SPLITS)}")


def load_tofu_split(name: str, data_dir: str | os.PathLike[str] = "auto") -> list[dict]:
    """Rows (dicts) of one TOFU split.

    ``data_dir``: a folder holding ``<name>.json``; ``"hub"`` to load ``locuslab/TOFU`` with
    ``datasets.load_dataset`` (TifError when offline); ``"auto"`` (default) for
    :func:`default_tofu_dir` when it finds a folder, else the hub.
    """
    _check_split_name(name)
    if data_dir == "auto":
        data_dir = default_tofu_dir() or "hub"
    if data_dir == "hub":
        return [row for _, _, row in file_or_hub_rows(f"hf://{TOFU_HUB_NAME}/{name}@train")]
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(
            f"TOFU data folder not found; set {TOFU_DIR_ENV} or pass data_dir='hub'",
            path=str(folder),
        )
    path = folder / f"{name}.json"
    if not path.is_file():
        raise DataError(f"TOFU split {name!r} not found in {folder}", path=str(path))
    return [row for _, _, row in file_or_hub_rows(path)]


def tofu_author_blocks(rows: Sequence[T], per_author: int = 20) -> list[list[T]]:
    """Split rows in author order (e.g. ``full.json``) into blocks of ``per_author`` rows.

    Raises TifError when the number of rows is not a multiple of ``per_author``.
    """
    if per_author <= 0:
        raise ValueError(f"per_author must be positive, got {per_author}")
    if len(rows) % per_author:
        raise TifError(
            f"{len(rows)} TOFU rows do not split into authors of {per_author} questions each"
        )
    return [list(rows[i : i + per_author]) for i in range(0, len(rows), per_author)]
