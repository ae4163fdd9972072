"""The GPU check (scripts/gpu_check.py, also run as scripts/gpu_smoke.sh): its dry run passes
every check on the CPU with a tiny model and synthetic data, and code broken on purpose (the
reference read one token off, rounded to bf16 as DeepSpeed's input cast did, an optimizer that
never updates) makes the checks that guard against it FAIL, with a non-zero exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
TRAINING_CHECKS = [
    "step-0 Δ TIF fp32",
    "step-0 Δ TIF bf16 autocast (--dtype auto)",
    "step-0 Δ NPO fp32",
    "step-0 Δ NPO bf16 autocast",
    "weights changed (tif-fp32)",
    "weights changed (tif-auto)",
    "weights changed (npo-fp32)",
    "weights changed (npo-bf16)",
    "--dtype auto picked bf16 autocast",
    "LoRA + gradient checkpointing",
]
COMMAND_CHECKS = [
    "eval tofu on cpu",
    "eval muse on cpu",
    "eval qa on cpu",
    "identify (contrast) on cpu",
]


def run_check(tmp_path: Path, *options: str, fault: str | None = None) -> tuple:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    env.pop("TIF_GPU_CHECK_FAULT", None)
    if fault:
        env["TIF_GPU_CHECK_FAULT"] = fault
    out = tmp_path / "check"
    result = subprocess.run(
        ["bash", str(SCRIPTS / "gpu_smoke.sh"), "--out", str(out), *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    statuses = {}
    for line in result.stdout.splitlines():
        status, _, rest = line.partition("  ")
        if status in ("PASS", "FAIL", "SKIP"):
            statuses[rest.split("  ")[0].strip()] = status
    return result, statuses, out


def test_the_dry_run_passes_every_check_on_the_cpu(tmp_path):
    result, statuses, out = run_check(tmp_path, "--dry-run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in TRAINING_CHECKS + COMMAND_CHECKS:
        assert statuses.get(name) == "PASS", (name, result.stdout[-3000:])
    assert statuses["peak GPU memory vs formula"] == "SKIP"
    assert "all 15 checks passed on cpu" in result.stdout
    recorded = json.loads((out / "gpu_check.json").read_text())
    assert recorded["device"] == "cpu" and len(recorded["checks"]) == 15
    assert recorded["runs"]["tif-fp32"]["delta"] == 0.0  # same shapes: bit-identical values


FAULTS = {
    "shifted-reference": [
        "step-0 Δ TIF fp32",
        "step-0 Δ TIF bf16 autocast (--dtype auto)",
        "step-0 Δ NPO fp32",
        "step-0 Δ NPO bf16 autocast",
        "LoRA + gradient checkpointing",
    ],
    # bf16 autocast already gives bf16-valued logits, so rounding TIF's cached logits to
    # bf16 changes nothing there; the sequence log-probs of NPO (sums) change in both.
    "bf16-reference": ["step-0 Δ TIF fp32", "step-0 Δ NPO fp32", "step-0 Δ NPO bf16 autocast"],
    "frozen-weights": [
        "weights changed (tif-fp32)",
        "weights changed (tif-auto)",
        "weights changed (npo-fp32)",
        "weights changed (npo-bf16)",
        "LoRA + gradient checkpointing",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_code_broken_on_purpose_fails_the_checks_that_guard_it(tmp_path, fault):
    result, statuses, _ = run_check(tmp_path, "--dry-run", "--only-training", fault=fault)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"fault injected on purpose: {fault}" in result.stdout
    failed = sorted(name for name, status in statuses.items() if status == "FAIL")
    assert failed == sorted(FAULTS[fault]), result.stdout[-3000:]


def test_without_a_gpu_the_gpu_run_refuses_to_start(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result, _, _ = run_check(tmp_path)
    assert result.returncode == 2 and "no CUDA GPU is visible" in result.stdout


def test_the_memory_formula_of_the_check_reads_the_models_shape(tiny_model_dir):
    # On a GPU the check compares its peak with this; here only that it computes: the tiny
    # model's fp32 weights (bytes) are part of the peak, and a 10x longer batch needs more.
    sys.path.insert(0, str(SCRIPTS))
    import gpu_check_runs

    from tif_unlearn.models import load_model

    model, _ = load_model(str(tiny_model_dir))
    params = sum(p.numel() for p in model.parameters())
    short = gpu_check_runs.formula_bytes(str(tiny_model_dir), params, 32, "bf16-autocast")
    long = gpu_check_runs.formula_bytes(str(tiny_model_dir), params, 320, "bf16-autocast")
    assert params * 4 < short < long


def test_a_folder_with_other_files_is_never_replaced(tmp_path):
    out = tmp_path / "check"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    result, _, _ = run_check(tmp_path, "--dry-run")
    assert result.returncode == 2 and "holds files of its own" in result.stdout
    assert (out / "thesis.tex").read_text() == "keep me"
