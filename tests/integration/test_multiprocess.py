"""`tif unlearn` under torchrun with 2 CPU processes (gloo) against a 1-process run.

2 processes x batch 2 must give the same optimizer steps as 1 process x batch 4: the sampler
yields one order, accelerate hands each rank its own consecutive batches, DDP averages the
gradients. The TIF loss is used per sample (--per-sample), so a batch-4 mean equals the mean of
two batch-2 means; the paper's batch-level sigmoid would not split exactly.

Both runs use float64 weights (--dtype float64); the tolerances are derived in conftest.py.
On an AVX-512 Xeon the float32 runs differed by 2.7e-5, which no fixed float32 tolerance
bounds from the arithmetic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import (
    FLOAT64_WEIGHT_ATOL,
    LOGGED_LOSS_RTOL,
    QA_PAIRS,
    UNWANTED,
    annotate,
    write_jsonl,
)
from tif_unlearn.cli.app import main
from tif_unlearn.data.loaders import load_records
from tif_unlearn.methods.base import TOKEN_LOGITS
from tif_unlearn.models import load_model
from tif_unlearn.train.streams import cache_reference, encode_all

WORKER = Path(__file__).with_name("distributed_worker.py")
SRC = Path(__file__).parents[2] / "src"


def _train_args(model_dir, forget, out, batch_size: int) -> list[str]:
    return [
        *["unlearn", "--model", str(model_dir), "--forget", str(forget), "--out", str(out)],
        *["--batch-size", str(batch_size), "--epochs", "1", "--lr", "1e-3", "--per-sample"],
        *["--warmup-epochs", "0", "--scheduler", "constant", "--seed", "1"],
        *["--dtype", "float64"],
    ]


def _losses(out: Path) -> list[float]:
    return [e["loss"] for e in json.loads((out / "tif_run.json").read_text())["log"] if "loss" in e]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_effective_batch(tiny_model_dir, tmp_path):
    rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    # 24 examples of varied lengths: more than one length-grouping mega-batch (8 x 4).
    rows = [{**r, "question": r["question"] + " Tell me." * k} for k in range(6) for r in rows]
    forget = write_jsonl(tmp_path / "forget.jsonl", rows)
    runs = tmp_path / "runs"
    single, multi, cache_json = runs / "single", runs / "multi", tmp_path / "cache.json"

    assert main(_train_args(tiny_model_dir, forget, single, batch_size=4)) == 0
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += [str(WORKER), str(tiny_model_dir), str(forget), str(cache_json), "--"]
    command += _train_args(tiny_model_dir, forget, multi, batch_size=2)
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    # Saved once, by rank 0, atomically: no temporary or replaced folders left beside it.
    assert sorted(p.name for p in runs.iterdir()) == ["multi", "single"]
    run = json.loads((multi / "tif_run.json").read_text())
    assert run["world_size"] == 2 and run["saved_by_rank"] == 0
    assert result.stdout.count("unlearned model written to") == 2  # both ranks finished

    # Same optimizer steps: 24 examples / effective batch 4 = 6 steps.
    assert len(_losses(multi)) == len(_losses(single)) == 6
    torch.testing.assert_close(_losses(multi), _losses(single), atol=0.0, rtol=LOGGED_LOSS_RTOL)
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    single_weights = load_file(str(single / "model.safetensors"))
    assert any(not torch.equal(single_weights[k], before[k]) for k in before)
    for name, weight in load_file(str(multi / "model.safetensors")).items():
        assert weight.dtype == torch.float64
        torch.testing.assert_close(weight, single_weights[name], atol=FLOAT64_WEIGHT_ATOL, rtol=0.0)

    # The reference cache computed in two shards equals the one-process cache.
    model, tokenizer = load_model(str(tiny_model_dir), dtype="float64")
    examples = encode_all(tokenizer, load_records(str(forget)), 512)
    expected = cache_reference(model, examples, TOKEN_LOGITS, pad_token_id=tokenizer.pad_token_id)
    gathered = json.loads(cache_json.read_text())
    assert len(gathered) == len(expected)
    for got, want in zip(gathered, expected, strict=True):
        assert got["input_ids"] == want["input_ids"]
        # float64 forward passes of other batch shapes: ~1e-15 apart (JSON keeps every digit).
        torch.testing.assert_close(
            torch.tensor(got["ref_token_values"], dtype=torch.float64),
            torch.tensor(want["ref_token_values"], dtype=torch.float64),
            atol=1e-10,
            rtol=0.0,
        )
