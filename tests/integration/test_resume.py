"""Faults: a run killed with SIGKILL resumes to the same weights; NaN stops with the step named.

The killed runs are real subprocesses that SIGKILL themselves right after a chosen checkpoint
(``TIF_TEST_KILL_AT_STEP``); the resumes and the reference runs go through ``main()``.

The runs use float64 weights: the killed subprocess runs with 1 thread, the resume and the
reference run with the test process's threads, so sums are added in other orders; the
tolerance follows from the arithmetic (conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

import tif_unlearn
from conftest import FLOAT64_WEIGHT_ATOL, QA_PAIRS, UNWANTED, annotate, write_jsonl
from tif_unlearn.cli import main
from tif_unlearn.train.checkpoints import MARKER, TEST_KILL_ENV, checkpoint_dir

SRC = str(Path(tif_unlearn.__file__).resolve().parents[1])
# 24 examples, batch 2: 12 steps an epoch, 36 in all; sorting groups of 16 by length, so the
# seeded shuffle of each epoch decides the order (a resume must replay it).
COMMON = ["--epochs", "3", "--batch-size", "2", "--lr", "1e-3", "--warmup-epochs", "0.5"]
COMMON += ["--dtype", "float64"]
N_STEPS = 36


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("resume-data")
    annotated = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    # Distinct retain rows (5, prime to 24 forget rows): a resume that paired forget rows with
    # other retain rows than the uninterrupted run would train on other data.
    retain = [
        {"question": "Where is Zürich?", "answer": "Zürich is in Switzerland."},
        {"question": "Who writes about history?", "answer": "Nikolai Abilov writes about history."},
        {"question": "What is the capital of Kuwait?", "answer": "Kuwait City."},
        {"question": "Name a true crime novel.", "answer": "The author wrote many books."},
        {"question": "Where is the café?", "answer": "The naïve café is in Zürich, I am sure."},
    ]
    return {
        "forget": write_jsonl(folder / "forget.jsonl", annotated * 6),
        "plain": write_jsonl(folder / "plain.jsonl", QA_PAIRS * 6),
        "retain": write_jsonl(folder / "retain.jsonl", retain),
    }


def unlearn_args(model, data, out) -> list[str]:
    forget, retain = str(data["forget"]), str(data["retain"])
    return ["unlearn", "--model", str(model), "--forget", forget, "--retain", retain,
            "--out", str(out), "--method", "tif", *COMMON]  # fmt: skip


def finetune_args(model, data, out) -> list[str]:
    return ["finetune", "--model", str(model), "--data", str(data["plain"]),
            "--out", str(out), *COMMON]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, data, tmp_path_factory) -> dict[str, Path]:
    """Reference runs without any checkpointing."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    outs = {"unlearn": folder / "unlearn", "finetune": folder / "finetune"}
    assert main(unlearn_args(tiny_model_dir, data, outs["unlearn"])) == 0
    assert main(finetune_args(tiny_model_dir, data, outs["finetune"])) == 0
    return outs


def run_killed(args: list[str], kill_at: str) -> subprocess.CompletedProcess:
    env = {**os.environ, TEST_KILL_ENV: kill_at, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "tif_unlearn.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def max_weight_difference(a: Path, b: Path) -> float:
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert left.keys() == right.keys()
    return max((left[k] - right[k]).abs().max().item() for k in left)


def complete_steps(out: Path) -> dict[int, bool]:
    folders = checkpoint_dir(out).glob("checkpoint-*")
    return {int(p.name.split("-")[1]): (p / MARKER).is_file() for p in folders}


@pytest.mark.parametrize(
    ("kill_at", "expect_checkpoints", "resumed_from"),
    [
        ("15", {10: True, 15: True}, 15),  # killed right after checkpoint 15 was complete
        ("10:unmarked", {5: True, 10: False}, 5),  # killed before checkpoint 10 was marked
    ],
)
def test_killed_unlearn_resumes_to_identical_weights(
    kill_at, expect_checkpoints, resumed_from, tiny_model_dir, data, uninterrupted, tmp_path, capsys
):
    out = tmp_path / "model"
    shutil.copytree(tiny_model_dir, out)  # an existing model, replaced only at the very end
    before = snapshot(out)
    args = [*unlearn_args(tiny_model_dir, data, out), "--save-steps", "5", "--overwrite"]

    killed = run_killed(args, kill_at)

    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert snapshot(out) == before  # the crash never touched --out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.checkpoints"]
    assert complete_steps(out) == expect_checkpoints

    assert main([*args, "--resume"]) == 0
    assert (
        f"resuming from {checkpoint_dir(out)}/checkpoint-{resumed_from}" in capsys.readouterr().err
    )
    assert max_weight_difference(out, uninterrupted["unlearn"]) <= FLOAT64_WEIGHT_ATOL
    assert not checkpoint_dir(out).exists()  # removed after success
    steps = [
        e["step"] for e in json.loads((out / "tif_run.json").read_text())["log"] if "loss" in e
    ]
    assert steps == list(range(1, N_STEPS + 1))  # the log of the killed part is kept


def test_killed_finetune_resumes_to_identical_weights(
    tiny_model_dir, data, uninterrupted, tmp_path
):
    out = tmp_path / "ft"
    args = [*finetune_args(tiny_model_dir, data, out), "--save-steps", "4"]

    killed = run_killed(args, "20")

    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists()
    assert main([*args, "--resume"]) == 0
    assert max_weight_difference(out, uninterrupted["finetune"]) <= FLOAT64_WEIGHT_ATOL
    assert not checkpoint_dir(out).exists()
