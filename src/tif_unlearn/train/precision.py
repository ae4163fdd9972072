"""Which precision the hardware runs fast, and the autocast every forward pass shares.

bf16 autocast pays off on CUDA GPUs that support bfloat16 and on CPUs with AVX-512-BF16 or
AMX; on other CPUs (AVX2 only) a bf16 matmul is about 100x slower than float32, so ``--bf16``
is refused there with the reason.

``$TIF_CPU_FLAGS`` (flags separated by spaces or commas) stands in for the CPU's own flags:
``TIF_CPU_FLAGS="avx2 amx_bf16"`` reproduces the ``--dtype auto`` choice of an AMX machine,
``TIF_CPU_FLAGS=avx2`` that of an AVX2-only one (the test suite sets the latter).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..devices import DEVICE_HELP, pick_device
from ..errors import TifError

if TYPE_CHECKING:
    import torch

FAST_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPU_FLAGS_VARIABLE = "TIF_CPU_FLAGS"
log = logging.getLogger("tif_unlearn")


def cpu_flags() -> set[str]:
    """The CPU feature flags: ``$TIF_CPU_FLAGS`` where set (even to nothing), else those of
    ``/proc/cpuinfo`` (empty where it cannot be read)."""
    override = os.environ.get(CPU_FLAGS_VARIABLE)
    if override is not None:
        return set(override.replace(",", " ").split())
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def cpu_has_fast_bf16() -> bool:
    return any(flag in cpu_flags() for flag in FAST_BF16_CPU_FLAGS)


def fast_bf16(device: torch.device) -> bool:
    """Whether bfloat16 runs fast on ``device`` (a bf16 GPU, or a CPU with AVX-512-BF16/AMX)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_fast_bf16()


def _flags_source(device: torch.device) -> str:
    """Where a CPU's answer came from, when not from the CPU itself."""
    if device.type == "cpu" and CPU_FLAGS_VARIABLE in os.environ:
        return f" per ${CPU_FLAGS_VARIABLE}"
    return ""


def training_precision(dtype: str, bf16: bool, device: torch.device) -> tuple[str, bool, str]:
    """(weights dtype, bf16 autocast, what was picked and why) for ``--dtype``/``--bf16``;
    ``auto`` = bf16 autocast with fp32 master weights where bf16 is fast, else float32."""
    if dtype != "auto":
        return dtype, bf16, f"{dtype} weights" + (" with bf16 autocast" if bf16 else "")
    if fast_bf16(device):
        reason = f"fast bf16 on {device}{_flags_source(device)}"
        return "float32", True, f"auto: bf16 autocast, fp32 master weights ({reason})"
    return "float32", bf16, f"auto: float32 (no fast bf16 on {device}{_flags_source(device)})"


def eval_dtype(dtype: str, device: torch.device) -> str:
    """The weights dtype for evaluation: ``auto`` = bfloat16 where it is fast, else float32."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if fast_bf16(device) else "float32"


def check_bf16(device: torch.device) -> None:
    """Refuse ``--bf16`` (one line) where bfloat16 is unsupported or slow on ``device``."""
    import torch

    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise TifError("--bf16: this GPU does not support bfloat16; drop --bf16")
        return
    if device.type == "cpu" and not cpu_has_fast_bf16():
        raise TifError(
            f"--bf16: this CPU has no fast bfloat16 (no AVX-512-BF16 or AMX flag"
            f"{_flags_source(device)}), where bf16 runs about 100x slower than float32; "
            "drop --bf16"
        )


def autocast(device: torch.device, bf16: bool):
    """The bf16 autocast the trainer applies to the policy's forward passes (or nothing):
    reference values must be computed under the same one, so that Δ = 0 at step 0."""
    import torch

    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def check_half_precision_weights(dtype: str, lora_r: int) -> None:
    """Refuse full fine-tuning of bf16/fp16 weights: AdamW then rounds most small updates away
    (at lr 1e-5 one step left 98 % of bf16 weights unchanged) and fp16 has no loss scaler.
    LoRA keeps its adapters in float32, so half-precision base weights are fine there."""
    if dtype in ("bfloat16", "float16") and lora_r == 0:
        raise TifError(
            f"--dtype {dtype} would train the weights themselves in half precision, where AdamW "
            "rounds most updates away; keep --dtype float32 with --bf16 (autocast, fp32 master "
            "weights), or train LoRA adapters (--lora-r)"
        )


EVAL_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class EvalPrecision:
    """``--dtype`` and ``--threads`` of the ``tif eval`` commands."""

    dtype: str = field(
        default="auto",
        metadata={
            "choices": EVAL_DTYPES,
            "help": "weights dtype; auto: bfloat16 where it is fast (bf16 GPU, AVX-512-BF16/AMX "
            "CPU), else float32",
        },
    )
    threads: int | None = field(
        default=None, metadata={"help": "torch CPU threads (default: torch's choice)"}
    )
    device: str = field(default="auto", metadata={"help": DEVICE_HELP})


def apply_eval_precision(precision: EvalPrecision) -> tuple[str, str]:
    """Set ``--threads``; return the weights dtype and the device that ``--dtype`` and
    ``--device`` stand for here (the commands print both with their results)."""
    import torch

    if precision.threads is not None:
        if precision.threads < 1:
            raise TifError("--threads must be >= 1")
        torch.set_num_threads(precision.threads)
    device = pick_device(precision.device)
    dtype = eval_dtype(precision.dtype, torch.device(device))
    log.debug(
        "evaluating on %s in %s (--device %s, --dtype %s)",
        device,
        dtype,
        precision.device,
        precision.dtype,
    )
    return dtype, device
