"""The training runs of ``gpu_check.py`` and what they measure: the step-0 Δ between the cached
reference values (as the batch brings them, after the Trainer prepared it) and the same values
computed live by the policy before its first update, whether the trained weights moved, and the
peak GPU memory. ``TIF_GPU_CHECK_FAULT`` breaks the code on purpose (for the test suite)."""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import shutil
from pathlib import Path

import torch
from transformers import TrainerCallback

from tif_unlearn.methods import METHODS
from tif_unlearn.methods.base import SEQ_LOGP, reference_values
from tif_unlearn.tokens import IGNORE_INDEX

FAULT_VARIABLE = "TIF_GPU_CHECK_FAULT"
FAULTS = ("shifted-reference", "bf16-reference", "frozen-weights")
# |cached − live| allowed at step 0. Batch size 1 for the cache and the training step: the
# same shapes, so the same kernels and, in principle, the same numbers in bf16 too.
DELTA_TOLERANCE = {"fp32": 1e-4, "bf16": 1e-2}


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    method: str
    dtype: str = "float32"
    bf16: bool = False
    lora_r: int = 0
    gradient_checkpointing: bool = False
    lr: float = 1e-5
    keep: bool = False  # keep the saved model (eval and identify use it)


RUNS = (
    Run("tif-fp32", "tif", keep=True),
    Run("tif-auto", "tif", dtype="auto"),  # a bf16 GPU: bf16 autocast, fp32 master weights
    Run("npo-fp32", "npo"),
    Run("npo-bf16", "npo", bf16=True),
    Run("tif-lora-gc", "tif", dtype="auto", lora_r=8, gradient_checkpointing=True, lr=1e-3),
)


def reference_delta(model, batch: dict, reference: dict[str, str]) -> float:
    """max |cached − live| over the answer tokens (token values) or the samples (sequence
    log-probs) of every stream that carries reference values."""
    worst = 0.0
    with torch.no_grad():
        for stream, kind in reference.items():
            live = reference_values(model, batch[stream], kind)
            for key, value in live.items():
                diff = (batch[stream][key].float() - value.float()).abs()
                if kind != SEQ_LOGP:
                    diff = diff[batch[stream]["labels"] != IGNORE_INDEX]
                worst = max(worst, float(diff.max()) if diff.numel() else 0.0)
    return worst


class Probe(TrainerCallback):
    """The step-0 Δ (through the method hook), the trained weights before and after."""

    def __init__(self):
        self.delta: float | None = None
        self.before: dict[str, torch.Tensor] = {}
        self.changed, self.max_change, self.params = 0.0, 0.0, 0

    def wrap(self, method):
        def compute_loss(model, batch, config):
            if self.delta is None:  # before the first update: the policy is the reference
                self.delta = reference_delta(model, batch, method.reference(config))
            return method.compute_loss(model, batch, config)

        return dataclasses.replace(method, compute_loss=compute_loss)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.params = sum(p.numel() for p in model.parameters())
        trained = ((n, p) for n, p in model.named_parameters() if p.requires_grad)
        self.before = {n: p.detach().float().cpu().clone() for n, p in trained}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        after = {
            n: p.detach().float().cpu() for n, p in model.named_parameters() if n in self.before
        }
        moved = [float((after[n] - w).abs().max()) for n, w in self.before.items()]
        self.changed = sum(m > 0 for m in moved) / max(len(moved), 1)
        self.max_change = max(moved, default=0.0)


def train(run: Run, model: str, data: dict, out: Path, steps: int) -> dict:
    """One ``run_unlearn`` with the probe; its numbers and the run record."""
    import json

    from tif_unlearn.config import UnlearnConfig
    from tif_unlearn.train import run_unlearn

    probe = Probe()
    original = METHODS[run.method]
    METHODS[run.method] = probe.wrap(original)
    gc.collect()  # the earlier runs' trainers hold their models in reference cycles
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    config = UnlearnConfig(
        model=model, method=run.method, forget=str(data["forget"]), retain=str(data["retain"]),
        out=str(out / run.name), overwrite=True, max_steps=steps, batch_size=1,
        reference_batch_size=1, warmup_epochs=0, lr=run.lr, dtype=run.dtype, bf16=run.bf16,
        lora_r=run.lora_r, gradient_checkpointing=run.gradient_checkpointing,
    )  # fmt: skip
    try:
        run_unlearn(config, callbacks=[probe])
    finally:
        METHODS[run.method] = original
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    record = json.loads((out / run.name / "tif_run.json").read_text())
    if not run.keep:
        shutil.rmtree(out / run.name, ignore_errors=True)
    losses = [e["loss"] for e in record["log"] if "loss" in e]
    return {
        "delta": probe.delta, "changed": probe.changed, "max_change": probe.max_change,
        "params": probe.params, "peak_bytes": peak, "precision": record["precision"],
        "losses": losses, "finite": bool(losses) and all(math.isfinite(x) for x in losses),
        "bf16": "bf16 autocast" in record["precision"],
    }  # fmt: skip


def train_or_crash(run: Run, model: str, data: dict, out: Path, steps: int) -> dict:
    """``train``; a run that crashes fails its checks (with the error) instead of the script."""
    try:
        return train(run, model, data, out, steps)
    except Exception as err:
        error = f"crashed: {type(err).__name__}: {' '.join(str(err).split())[:200]}"
        print(f"gpu_check: {run.name} {error}")
        return {
            "delta": None, "changed": 0.0, "max_change": 0.0, "params": 0, "peak_bytes": 0,
            "precision": error, "losses": [error], "finite": False, "bf16": False,
        }  # fmt: skip


# ---------------------------------------------------------------------------------- faults


def inject_fault(name: str | None) -> None:
    """Break the code the way real bugs would, so that the test suite can see the check fail:
    the reference read one token off, the reference rounded to bf16 (what DeepSpeed's input
    cast did), an optimizer that never updates."""
    if not name:
        return
    if name not in FAULTS:
        raise SystemExit(f"{FAULT_VARIABLE} must be one of {', '.join(FAULTS)}")
    from tif_unlearn.train import streams

    honest = streams.reference_values
    if name == "shifted-reference":

        def shifted(model, stream, kind):
            labels = torch.roll(stream["labels"], 1, dims=1)
            return honest(model, {**stream, "labels": labels}, kind)

        streams.reference_values = shifted
    elif name == "bf16-reference":

        def rounded(model, stream, kind):
            values = honest(model, stream, kind)
            return {k: v.to(torch.bfloat16).float() for k, v in values.items()}

        streams.reference_values = rounded
    else:
        torch.optim.AdamW.step = lambda self, closure=None: None
    print(f"gpu_check: fault injected on purpose: {name}")


def fault_from_env() -> str | None:
    return os.environ.get(FAULT_VARIABLE) or None


# ---------------------------------------------------------------------------------- memory


def formula_bytes(model: str, params: int, length: int, precision: str) -> float:
    """``benchmarks/gpu_memory.py``'s estimate (without its fixed CUDA-context allowance, which
    ``max_memory_allocated`` does not see) for one run of the check: batch 1 + 1."""
    import sys

    from transformers import AutoConfig

    from tif_unlearn.models import resolve_model_source

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from gpu_memory import Scenario, arch_from_config, estimate

    arch = arch_from_config(AutoConfig.from_pretrained(resolve_model_source(model)), params)
    scenario = Scenario(
        "gpu check", "check", precision=precision, batch=1, length=length, reference_batch=1
    )
    return max(estimate(scenario, arch)["bytes"].values())
