"""scripts/gpu_smoke.sh: its steps run end to end (on the CPU, DEVICE=cpu, with the tiny model
and a synthetic TOFU folder), and it exits non-zero at the first failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import write_jsonl
from eval_data import FORGET, RETAIN, write_tofu_folder

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_smoke.sh"


def run_smoke(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    settings = {
        "OUT": str(tmp_path / "out"),
        "TIF": f"{sys.executable} -m tif_unlearn.cli",
        "PYTHON": sys.executable,
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
def test_every_step_runs_on_the_cpu(tiny_model_dir, tmp_path):
    tofu = write_tofu_folder(tmp_path / "tofu")
    write_jsonl(tofu / "forget01.json", [{"question": q, "answer": a} for q, a in FORGET])
    write_jsonl(tofu / "retain99.json", [{"question": q, "answer": a} for q, a in RETAIN])
    env = {"DEVICE": "cpu", "MODEL": str(tiny_model_dir), "TIF_TOFU_DIR": str(tofu)}
    result = run_smoke(tmp_path, STEPS="2", **env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gpu_smoke: all steps passed" in result.stdout
    assert "3 runs and 2 evaluations on cpu" in result.stdout


def test_a_failing_step_stops_the_script(tmp_path):
    result = run_smoke(tmp_path, DEVICE="cpu", MODEL=str(tmp_path / "no-such-model"))
    assert result.returncode != 0
    assert "gpu_smoke: FAILED at finetune" in result.stderr


def test_without_cuda_it_refuses_to_start(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = run_smoke(tmp_path)
    assert result.returncode != 0 and "no CUDA device" in result.stderr
