"""The efficacy benchmarks' caches: every finished step is a JSON file holding the signature it
was made with (:func:`cached_json`), run names, and the digests of data files and models that
signatures are made of. A change to any of these names or digests invalidates finished runs
(``tests/unit/test_benchmark_signatures.py`` pins them)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_digest(folder: Path) -> str:
    """A model folder's identity: its run record, or (an epoch checkpoint) its weights."""
    record = folder / "tif_run.json"
    if record.is_file():
        return digest(record.read_text())
    sha = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as weights:
        for block in iter(lambda: weights.read(1 << 24), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def wait_for_result(path: Path, wait_minutes: float, missing: str) -> dict:
    """The result cached in ``path``, waiting up to ``wait_minutes`` for another task (the
    other worker) to write it; SystemExit(``missing``) after that."""
    import time

    deadline = time.time() + 60 * wait_minutes
    while not path.is_file():
        if time.time() > deadline:
            raise SystemExit(missing)
        time.sleep(10)
    return read_json(path)["result"]


def cached_json(path: Path, signature: dict, compute: Callable[[], dict]) -> dict:
    """``compute()`` unless ``path`` holds a result made with the same ``signature``."""
    saved = read_json(path)
    if saved and saved.get("signature") == json.loads(json.dumps(signature)):
        return saved["result"]
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"signature": signature, "result": result}))
    tmp.replace(path)
    return result


def cached_probe(work: Path, run: str, checkpoint: Path, recipe: dict, compute: Callable[[], dict]):
    """A checkpoint's probe numbers (``work/probe/<run>.<checkpoint>.json``), computed once per
    weights: a run restarted after an interruption trains again (fixed seeds reproduce the
    weights) but probes only new epochs."""
    cache = work / "probe" / f"{run}.{checkpoint.name}.json"
    return cached_json(cache, {"model": model_digest(checkpoint), "recipe": recipe}, compute)


def write_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)``, then ``tmp`` renamed to ``path``: the tasks running side by side rewrite
    the same data files, and a reader must never see one half-written."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    tmp.replace(path)
    return path


def write_records(records, path: Path) -> Path:
    """``write_annotated``, atomically (:func:`write_atomically`)."""
    from tif_unlearn.data.annotations import write_annotated

    return write_atomically(path, partial(write_annotated, records))


def run_name(family: str, lr: float, seed: int) -> str:
    """``tif_lr1e-04`` (seed 0) or ``tif_lr1e-04_seed1``: a run's file name."""
    return f"{family}_lr{lr:.0e}" + (f"_seed{seed}" if seed else "")


def parse_run(name: str) -> tuple[str, float, int]:
    seed = int(name.rsplit("_seed", 1)[1]) if "_seed" in name else 0
    family, lr = name.split("_seed")[0].rsplit("_lr", 1)
    return family, float(lr), seed
