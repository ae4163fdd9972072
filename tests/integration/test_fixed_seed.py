"""A fixed-seed run is reproducible to the bit: the same options give byte-identical weights,
and changing the seed changes them (so the comparison can fail). The redesign's before/after
check of the same property across code versions is ``benchmarks/same_weights.py``."""

from __future__ import annotations

import hashlib

import pytest

from tif_unlearn.config import UnlearnConfig
from tif_unlearn.train import run_unlearn


def _weights_digest(folder) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def _unlearn(tiny_model_dir, qa_files, out, method: str, seed: int, **options) -> str:
    config = UnlearnConfig(
        model=str(tiny_model_dir),
        out=str(out),
        method=method,
        forget=str(qa_files["forget"]),
        retain=str(qa_files["retain"]),
        epochs=2,
        batch_size=2,
        grad_accum=2,
        lr=1e-3,
        seed=seed,
        **options,
    )
    return _weights_digest(run_unlearn(config))


@pytest.mark.parametrize(
    ("method", "options"),
    [("tif", {}), ("npo", {"targeted": True}), ("graddiff", {"step_count": "floor"})],
)
def test_same_seed_gives_identical_weights(method, options, tiny_model_dir, qa_files, tmp_path):
    first = _unlearn(tiny_model_dir, qa_files, tmp_path / "a", method, 3, **options)
    second = _unlearn(tiny_model_dir, qa_files, tmp_path / "b", method, 3, **options)
    other_seed = _unlearn(tiny_model_dir, qa_files, tmp_path / "c", method, 4, **options)
    assert first == second
    assert other_seed != first
