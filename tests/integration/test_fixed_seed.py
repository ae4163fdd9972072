"""A fixed-seed run is reproducible to the bit: the same options give byte-identical weights,
and changing the seed changes them (so the comparison can fail), under float32 and under the
bf16 autocast that `--dtype auto` picks on AVX-512-BF16/AMX CPUs (``cpu`` fixture). The
redesign's before/after check of the same property across code versions is
``benchmarks/same_weights.py``."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import QA_PAIRS, UNWANTED, annotate, write_jsonl
from tif_unlearn.config import UnlearnConfig
from tif_unlearn.train import run_unlearn

# Why 8 forget examples in micro-batches of 1. The seed drives the data order (a permutation
# per epoch, data/batches.py) and which retain example each forget example is paired with.
# With the 4 examples of `qa_files` in micro-batches of 2 and --grad-accum 2, every optimizer
# step sees all 4 examples, and the sampler sorts each group of 4 micro-batches (8 examples,
# i.e. the whole set) longest first: seeds 3 and 4 give the same order ([2, 1, 3, 0] in both
# epochs) and the same retain pairs per micro-batch, only one micro-batch's rows swapped.
# Mathematically the two runs are the same run; they differ only in summation order. In
# float32 that left 9,867 of 125,248 gradient elements apart (at most 3.7e-9) and 0.81 % of the
# weights one float32 ulp apart (at most 8e-8). Under bf16 autocast the matmul gradients are
# rounded to bf16 first, which absorbs most of that noise: 30 elements differed (relative
# 3.5e-4), all with |g| >= 3.9e-6 >> Adam's eps = 1e-8, where Adam's update lr * m / (sqrt(v) +
# eps) changed by at most 2e-12, far below the float32 ulp of the weights, so the weights came
# out byte-identical. Nothing was lost: both precisions moved every weight by lr = 1e-3 (Adam's
# first effective step; the first step is warm-up at lr 0). The old test only saw seeds differ
# where rounding noise happened to survive. Here the forget set spans two sampler groups, so
# the seed changes the data order itself: the weights of seeds 3 and 4 then differ by ~5e-3
# (measured over 2 epochs: 4.4e-3 to 5.5e-3 for the three methods, in both precisions).
EXTRA = [
    ({"question": "Who writes about history?", "answer": "Nikolai Abilov writes about history."},
     ["Nikolai Abilov"]),
    ({"question": "Where is Zürich?", "answer": "Zürich is in Switzerland."}, ["Switzerland"]),
    ({"question": "Where does Élodie live?", "answer": "Élodie Brûlé lives in Zürich."},
     ["Zürich"]),
    ({"question": "What does Jaime write?", "answer": "Jaime writes true crime novels."},
     ["true crime"]),
]  # fmt: skip
SEED_EFFECT = 1e-4  # far above rounding (8e-8), far below the ~5e-3 a reordering gives


@pytest.fixture
def eight_forget(tmp_path):
    pairs = [*zip(QA_PAIRS, UNWANTED, strict=True), *EXTRA]
    return write_jsonl(tmp_path / "forget8.jsonl", [annotate(r, w) for r, w in pairs])


def _unlearn(tiny_model_dir, forget, retain, out, method: str, seed: int, **options):
    config = UnlearnConfig(
        model=str(tiny_model_dir),
        out=str(out),
        method=method,
        forget=str(forget),
        retain=str(retain),
        epochs=1,
        batch_size=1,
        grad_accum=2,
        lr=1e-3,
        seed=seed,
        **options,
    )
    return run_unlearn(config)


def _digest(folder) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("method", "options"),
    [("tif", {}), ("npo", {"targeted": True}), ("graddiff", {"step_count": "floor"})],
)
def test_same_seed_gives_identical_weights(
    method, options, cpu, tiny_model_dir, qa_files, eight_forget, tmp_path
):
    def unlearn(name: str, seed: int):
        retain = qa_files["retain"]
        return _unlearn(
            tiny_model_dir, eight_forget, retain, tmp_path / name, method, seed, **options
        )

    first, second, other_seed = unlearn("a", 3), unlearn("b", 3), unlearn("c", 4)
    run = json.loads((first / "tif_run.json").read_text())
    assert run["config"]["bf16"] is cpu.fast_bf16  # --dtype auto followed the (faked) CPU
    assert _digest(first) == _digest(second)
    weights = load_file(str(first / "model.safetensors"))
    other = load_file(str(other_seed / "model.safetensors"))
    assert all(w.dtype == torch.float32 for w in weights.values())  # fp32 master weights
    difference = max(float((weights[k] - other[k]).abs().max()) for k in weights)
    assert difference > SEED_EFFECT  # another data order, not rounding noise
