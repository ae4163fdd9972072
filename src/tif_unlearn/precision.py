"""Which precision the hardware runs fast, and the autocast every forward pass shares.

bf16 autocast pays off on CUDA GPUs that support bfloat16 and on CPUs with AVX-512-BF16 or
AMX; on other CPUs (AVX2 only) a bf16 matmul is about 100x slower than float32, so ``--bf16``
is refused there with the reason.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from .errors import TifError

FAST_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((row for row in text.splitlines() if row.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def cpu_has_fast_bf16() -> bool:
    return any(flag in cpu_flags() for flag in FAST_BF16_CPU_FLAGS)


def check_bf16(device: torch.device) -> None:
    """Refuse ``--bf16`` (one line) where bfloat16 is unsupported or slow on ``device``."""
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise TifError("--bf16: this GPU does not support bfloat16; drop --bf16")
        return
    if device.type == "cpu" and not cpu_has_fast_bf16():
        raise TifError(
            "--bf16: this CPU has no fast bfloat16 (no AVX-512-BF16 or AMX flag), where bf16 "
            "runs about 100x slower than float32; drop --bf16"
        )


def autocast(device: torch.device, bf16: bool):
    """The bf16 autocast the trainer applies to the policy's forward passes (or nothing):
    reference values must be computed under the same one, so that Δ = 0 at step 0."""
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
