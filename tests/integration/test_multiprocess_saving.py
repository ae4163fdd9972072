"""What several processes write and log: `tif unlearn` under torchrun with 2 CPU processes (gloo).

- ``--save-steps``: a checkpoint is marked complete (by rank 0, once) only after every rank has
  saved its part, so a rank 0 killed while saving leaves it unmarked; 2 processes resume it.
- ``--keep-best``: only rank 0 saves the best weights (beside ``--out``); every rank restores them.
- The logged loss parts (lpl, pl, retain_nll) are means over both ranks' batches.

``ranks_worker.py`` records what each rank did: its loss parts, ``save_pretrained`` calls,
checkpoint markers and final weights.
The runs use float64 weights (tolerances: conftest.py).
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

from conftest import FLOAT64_WEIGHT_ATOL, QA_PAIRS, UNWANTED, annotate, write_jsonl
from eval_data import write_tofu_folder
from tif_unlearn.train.checkpoints import MARKER, TEST_KILL_ENV, checkpoint_dir

WORKER = Path(__file__).with_name("ranks_worker.py")
SRC = Path(__file__).parents[2] / "src"
N_STEPS = 6  # 24 forget rows / (2 processes x batch 2)
PARTS = ("lpl", "pl", "retain_nll")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ranks-data")
    rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    rows = [{**r, "question": r["question"] + " Tell me." * k} for k in range(6) for r in rows]
    retain = [
        {"question": "Where is Zürich?", "answer": "Zürich is in Switzerland."},
        {"question": "Who writes about history?", "answer": "Nikolai Abilov writes about history."},
        {"question": "What is the capital of Kuwait?", "answer": "Kuwait City."},
    ]
    return {
        "forget": write_jsonl(folder / "forget.jsonl", rows),
        "retain": write_jsonl(folder / "retain.jsonl", retain),
        "plain": write_jsonl(folder / "plain.jsonl", QA_PAIRS),
        "tofu": write_tofu_folder(folder / "tofu"),
    }


def torchrun(record_dir: Path, args: list[str], kill_at: str | None = None):
    record_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(WORKER), str(record_dir), "--", *args]
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    env.pop(TEST_KILL_ENV, None)
    if kill_at:
        env[TEST_KILL_ENV] = kill_at
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def unlearn_args(model, data, out) -> list[str]:
    return ["unlearn", "--model", str(model), "--method", "tif",
            "--forget", str(data["forget"]), "--retain", str(data["retain"]), "--out", str(out),
            "--batch-size", "2", "--epochs", "1", "--lr", "1e-3", "--warmup-epochs", "0",
            "--seed", "1", "--dtype", "float64", "--save-steps", "2"]  # fmt: skip


def logged(out: Path) -> list[dict]:
    return [e for e in json.loads((out / "tif_run.json").read_text())["log"] if "loss" in e]


def complete_steps(out: Path) -> dict[int, bool]:
    folders = checkpoint_dir(out).glob("checkpoint-*")
    return {int(p.name.split("-")[1]): (p / MARKER).is_file() for p in folders}


@pytest.fixture(scope="module")
def uninterrupted(tiny_model_dir, data, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("uninterrupted")
    out, records = folder / "model", folder / "records"
    result = torchrun(records, unlearn_args(tiny_model_dir, data, out))
    assert result.returncode == 0, result.stderr[-3000:]
    return {"out": out, "records": records, "result": result}


@pytest.mark.slow
def test_logged_loss_parts_are_the_mean_over_both_ranks(uninterrupted):
    records = uninterrupted["records"]
    ranks = [json.loads((records / f"parts-{r}.json").read_text()) for r in (0, 1)]
    assert [p["step"] for p in ranks[0]] == [p["step"] for p in ranks[1]] == [*range(1, 7)]
    # the ranks see other batches, so one rank's view is not the mean
    assert max(abs(a["lpl"] - b["lpl"]) for a, b in zip(*ranks, strict=True)) > 1e-3
    entries = logged(uninterrupted["out"])
    assert [e["step"] for e in entries] == list(range(1, N_STEPS + 1))
    for entry, mine, theirs in zip(entries, *ranks, strict=True):
        for part in PARTS:
            assert entry[part] == pytest.approx((mine[part] + theirs[part]) / 2, abs=1e-6), part


@pytest.mark.slow
def test_two_processes_mark_each_checkpoint_once_and_clean_up(uninterrupted):
    out, result, records = uninterrupted["out"], uninterrupted["result"], uninterrupted["records"]
    assert result.stdout.count("unlearned model written to") == 2  # both ranks finished
    markers = [json.loads((records / f"markers-{r}.json").read_text()) for r in (0, 1)]
    folder = checkpoint_dir(out)
    assert markers[0] == [str(folder / f"checkpoint-{s}" / MARKER) for s in (2, 4, 6)]
    assert markers[1] == []
    assert not checkpoint_dir(out).exists()  # removed after success
    assert (out / "model.safetensors").is_file()


@pytest.mark.slow
def test_rank_0_killed_while_saving_leaves_the_checkpoint_unmarked_and_resumes(
    tiny_model_dir, data, uninterrupted, tmp_path
):
    out = tmp_path / "model"
    args = unlearn_args(tiny_model_dir, data, out)
    # Rank 0 dies right after its part of checkpoint 4 (weights, optimizer) is written; rank 1
    # has written its own part (RNG state) by then and must not mark the checkpoint complete.
    killed = torchrun(tmp_path / "killed", args, kill_at="4:unmarked:0")
    assert killed.returncode != 0, killed.stderr[-3000:]
    assert not out.exists()
    assert complete_steps(out) == {2: True, 4: False}

    resumed = torchrun(tmp_path / "resumed", [*args, "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {checkpoint_dir(out)}/checkpoint-2" in resumed.stderr
    assert not checkpoint_dir(out).exists()
    assert [e["step"] for e in logged(out)] == list(range(1, N_STEPS + 1))
    want = load_file(str(uninterrupted["out"] / "model.safetensors"))
    for name, weight in load_file(str(out / "model.safetensors")).items():
        torch.testing.assert_close(weight, want[name], atol=FLOAT64_WEIGHT_ATOL, rtol=0.0)


@pytest.mark.slow
def test_keep_best_is_saved_by_rank_0_beside_out_and_restored_on_every_rank(
    tiny_model_dir, data, tmp_path
):
    out, records = tmp_path / "model", tmp_path / "records"
    args = ["unlearn", "--model", str(tiny_model_dir), "--method", "ga",
            "--forget", str(data["plain"]), "--out", str(out), "--max-steps", "3",
            "--batch-size", "1", "--lr", "5e-3", "--warmup-epochs", "0", "--dtype", "float64",
            "--eval-every", "1", "--eval-data-dir", str(data["tofu"]), "--eval-max-items", "3",
            "--keep-best", "retain_prob"]  # fmt: skip
    result = torchrun(records, args)
    assert result.returncode == 0, result.stderr[-3000:]

    best = out.with_name("model.best")
    saves = [json.loads((records / f"saves-{r}.json").read_text()) for r in (0, 1)]
    assert saves[1] == []  # rank 1 saved nothing
    assert set(saves[0][:-1]) == {str(best)}  # rank 0: the best weights, then --out
    assert not best.exists()  # removed once restored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "records"]

    run = json.loads((out / "tif_run.json").read_text())
    kept = max(run["eval"], key=lambda entry: entry["retain_prob"])
    assert run["kept_best"]["step"] == kept["step"]
    assert kept["step"] < 3  # gradient ascent lowers retain_prob: restoring changes weights
    saved = load_file(str(out / "model.safetensors"))
    for rank in (0, 1):
        weights = load_file(str(records / f"weights-{rank}.safetensors"))
        for name, weight in saved.items():
            assert torch.equal(weights[name], weight), (rank, name)
