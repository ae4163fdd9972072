"""Training arithmetic through `tif unlearn`: gradient accumulation and the learning-rate
schedule.

- ``--batch-size 2 --grad-accum 2`` takes the same optimizer steps as ``--batch-size 4``: the
  Trainer averages the two half-batch losses, and with ``--per-sample`` the TIF loss of 4
  examples is the mean of two 2-example means. The sampler sorts by length inside groups of 4
  micro-batches, so with 8 examples both runs see one group, sorted the same way. float64, so
  the two runs agree to rounding (tolerances in conftest.py).
- The logged learning rate follows the documented schedule: steps per epoch = ceil(examples /
  effective batch), warm-up W = round(steps per epoch · --warmup-epochs), T steps in all; the
  rate logged at optimizer step s is the one that step used, after s − 1 scheduler steps (k):
  lr · k / W during warm-up (so the first step of a warm-up uses 0: transformers' convention),
  then lr · (T − k) / (T − W) (linear) or lr (constant).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from conftest import FLOAT64_WEIGHT_ATOL, QA_PAIRS, UNWANTED, annotate, write_jsonl
from tif_unlearn.cli.app import main

LR = 1e-3


def _forget(folder, copies: int):
    rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    rows = [{**r, "question": r["question"] + " Please." * k} for k in range(copies) for r in rows]
    return write_jsonl(folder / f"forget{len(rows)}.jsonl", rows)


@pytest.fixture(scope="module")
def forget12(tmp_path_factory):
    return _forget(tmp_path_factory.mktemp("arith"), 3)


@pytest.fixture(scope="module")
def forget8(tmp_path_factory):
    """One length-sorting group for batch 2 and batch 4 alike (4 micro-batches of 2 = 8)."""
    return _forget(tmp_path_factory.mktemp("arith"), 2)


def _run(model_dir, forget, out, *extra) -> list[dict]:
    args = ["unlearn", "--model", str(model_dir), "--forget", str(forget), "--out", str(out)]
    args += ["--lr", str(LR), "--seed", "3", "--dtype", "float64", "--per-sample", *extra]
    assert main(args) == 0
    return [e for e in json.loads((out / "tif_run.json").read_text())["log"] if "loss" in e]


def test_grad_accum_takes_the_same_steps_as_the_whole_batch(tiny_model_dir, forget8, tmp_path):
    common = ("--epochs", "1", "--warmup-epochs", "0", "--scheduler", "constant")
    whole = _run(tiny_model_dir, forget8, tmp_path / "b4", "--batch-size", "4", *common)
    accum = _run(
        tiny_model_dir, forget8, tmp_path / "b2x2", "--batch-size", "2", "--grad-accum", "2",
        *common,
    )  # fmt: skip
    assert len(whole) == len(accum) == 2  # 8 examples / effective batch 4
    weights = load_file(str(tmp_path / "b4" / "model.safetensors"))
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    assert any(not torch.equal(weights[k].float(), before[k].float()) for k in before)
    for name, weight in load_file(str(tmp_path / "b2x2" / "model.safetensors")).items():
        torch.testing.assert_close(weight, weights[name], atol=FLOAT64_WEIGHT_ATOL, rtol=0.0)


def _expected_rates(steps_per_epoch: int, epochs: float, warmup_epochs: float, kind: str):
    total = math.ceil(steps_per_epoch * epochs)
    warmup = min(round(steps_per_epoch * warmup_epochs), total - 1)
    rates = []
    for k in range(total):  # scheduler steps taken before optimizer step k + 1
        if k < warmup:
            rates.append(LR * k / warmup)
        elif kind == "linear":
            rates.append(LR * (total - k) / (total - warmup))
        else:
            rates.append(LR)
    return rates


@pytest.mark.parametrize(
    ("extra", "steps_per_epoch", "epochs", "warmup", "kind"),
    [
        (("--batch-size", "2", "--scheduler", "linear"), 6, 2.0, 0.5, "linear"),
        (
            ("--batch-size", "2", "--grad-accum", "2", "--scheduler", "linear"),
            3,
            2.0,
            1.0,
            "linear",
        ),
        (("--batch-size", "5", "--scheduler", "constant"), 3, 1.0, 0.34, "constant"),
    ],
    ids=["linear", "linear-grad-accum", "constant-with-warmup"],
)
def test_logged_learning_rate_follows_the_schedule(
    extra, steps_per_epoch, epochs, warmup, kind, tiny_model_dir, forget12, tmp_path
):
    args = (*extra, "--epochs", str(epochs), "--warmup-epochs", str(warmup))
    log = _run(tiny_model_dir, forget12, tmp_path / "out", *args)
    expected = _expected_rates(steps_per_epoch, epochs, warmup, kind)
    assert [e["step"] for e in log] == list(range(1, len(expected) + 1))
    assert [e["learning_rate"] for e in log] == pytest.approx(expected, rel=1e-9, abs=1e-15)
