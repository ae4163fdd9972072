"""CLI: NaN/inf stops training with the step named; --resume and leftover checkpoints refused.

The divergence is real: a learning rate of 1e10 takes every weight to about 1e10 in one AdamW
step, and the next forward pass overflows fp32 (loss NaN); at 1e39 the step itself is inf.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import write_jsonl
from tif_unlearn.cli.app import main
from tif_unlearn.train.checkpoints import MARKER, checkpoint_dir

DIVERGE = ["--scheduler", "constant", "--warmup-epochs", "0", "--epochs", "3"]


def _args(model, forget, out, *extra) -> list[str]:
    return ["unlearn", "--model", str(model), "--forget", str(forget), "--out", str(out),
            "--batch-size", "2", *DIVERGE, *extra]  # fmt: skip


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("tif: error: "), err
    return err[-1]


def _checkpoints(out: Path) -> dict[int, bool]:
    folders = checkpoint_dir(out).glob("checkpoint-*")
    return {int(p.name.split("-")[1]): (p / MARKER).is_file() for p in folders}


@pytest.fixture
def diverged(tiny_model_dir, qa_files, tmp_path, capsys):
    """A run with checkpoints every step that diverges: (out, failing step, its error line)."""
    out = tmp_path / "out"
    code = main(_args(tiny_model_dir, qa_files["forget"], out, "--lr", "1e10", "--save-steps", "1"))
    assert code == 2
    line = _error_line(capsys)
    step = int(re.search(r"tif: error: step (\d+): ", line).group(1))
    return out, step, line


def test_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(diverged):
    out, step, line = diverged
    assert step >= 2 and re.search(r": (loss|gradient norm) is (nan|inf|-inf);", line)
    assert "nothing written to --out" in line
    last = checkpoint_dir(out) / f"checkpoint-{step - 1}"
    assert f"last good checkpoint kept: {last}" in line
    assert _checkpoints(out) == {s: True for s in range(max(1, step - 2), step)}
    weights = load_file(last / "model.safetensors")
    assert all(t.isfinite().all() for t in weights.values())
    assert not out.exists()


def test_inf_weights_are_never_checkpointed(tiny_model_dir, qa_files, tmp_path, capsys):
    out = tmp_path / "out"
    args = _args(tiny_model_dir, qa_files["forget"], out, "--lr", "1e39", "--save-steps", "1")
    assert main(args) == 2
    line = _error_line(capsys)
    assert re.search(r"step 1: weight \S+ holds NaN or inf", line)
    assert "no checkpoint kept" in line
    assert _checkpoints(out) == {}
    assert not out.exists()


def test_nan_leaves_an_existing_out_intact(tiny_model_dir, qa_files, tmp_path, capsys):
    out = tmp_path / "runs" / "out"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("old model")
    args = _args(tiny_model_dir, qa_files["forget"], out, "--lr", "1e10", "--overwrite")
    assert main(args) == 2
    assert re.search(r"step \d+: loss is nan; .* no checkpoint kept", _error_line(capsys))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in out.parent.iterdir()] == ["out"]  # no temp folder left behind


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (["--lr", "1e-3"], "lr: 10000000000.0 -> 0.001"),
        (["--lr", "1e10", "--batch-size", "1"], "batch_size: 2 -> 1"),
        (["--lr", "1e10", "--seed", "5"], "seed: 0 -> 5"),
        (["--lr", "1e10", "--method", "ga"], "method: 'tif' -> 'ga'"),
    ],
)
def test_resume_refuses_other_training_options(
    change, fragment, diverged, tiny_model_dir, qa_files, capsys
):
    out, _, _ = diverged
    assert main([*_args(tiny_model_dir, qa_files["forget"], out, "--resume"), *change]) == 2
    line = _error_line(capsys)
    assert "--resume: " in line and fragment in line


def test_resume_refuses_changed_data(diverged, tiny_model_dir, qa_files, capsys):
    out, _, _ = diverged
    rows = qa_files["forget"].read_text().splitlines()
    write_jsonl(qa_files["forget"], [json.loads(r) for r in rows[:-1]])
    args = _args(tiny_model_dir, qa_files["forget"], out, "--lr", "1e10", "--resume")
    assert main(args) == 2
    assert re.search(r"--resume: .*sha256", _error_line(capsys))


def test_resume_accepts_options_that_do_not_change_training(
    diverged, tiny_model_dir, qa_files, capsys
):
    out, step, _ = diverged
    args = _args(tiny_model_dir, qa_files["forget"], out, "--lr", "1e10", "--resume")
    assert main([*args, "--save-steps", "3"]) == 2  # resumes, then diverges again
    err = capsys.readouterr().err
    assert f"resuming from {checkpoint_dir(out)}/checkpoint-{step - 1}" in err
    assert f"step {step}: loss is nan" in err


def test_leftover_checkpoints_need_resume_or_overwrite(diverged, tiny_model_dir, qa_files, capsys):
    out, _, _ = diverged
    args = _args(tiny_model_dir, qa_files["forget"], out, "--lr", "1e-3", "--max-steps", "2")
    assert main(args) == 2
    assert "pass --resume to continue it, or --overwrite" in _error_line(capsys)
    assert main([*args, "--overwrite", "--save-steps", "1"]) == 0
    assert (out / "model.safetensors").is_file()
    assert not checkpoint_dir(out).exists()


def test_resume_without_a_checkpoint_fails_cleanly(tiny_model_dir, qa_files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_args(tiny_model_dir, qa_files["forget"], out, "--resume")) == 2
    assert f"--resume: no complete checkpoint in {checkpoint_dir(out)}" in _error_line(capsys)


def test_resume_with_keep_best_is_refused(tiny_model_dir, qa_files, tmp_path, capsys):
    args = _args(tiny_model_dir, qa_files["forget"], tmp_path / "o", "--resume")
    assert main([*args, "--eval-every", "2", "--keep-best", "forget_rouge"]) == 2
    assert "--resume cannot be combined with --keep-best" in _error_line(capsys)


def test_negative_save_steps_is_refused(tiny_model_dir, qa_files, tmp_path, capsys):
    assert (
        main(_args(tiny_model_dir, qa_files["forget"], tmp_path / "o", "--save-steps", "-1")) == 2
    )
    assert "save_steps must be >= 0" in _error_line(capsys)
