"""Faults beyond a kill: a full disk while saving, two runs on one --out, an interrupted eval.

- ENOSPC while the model is written (or at the final rename): exit 2 with one line, the
  previous --out byte for byte as it was, no temporary folder left beside it.
- A second `tif unlearn` or `tif finetune` (the commands that write a model folder to --out)
  given the --out of a running one is refused (lock), and the lock dies with its process
  (SIGKILL leaves no stale lock).
- `tif eval` interrupted or out of disk while writing its results: the previous results file
  is intact, no temporary file is left, and a rerun writes a complete file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tif_unlearn
from eval_data import write_muse_folder
from tif_unlearn.cli.app import main

SRC = str(Path(tif_unlearn.__file__).resolve().parents[1])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


PROGRESS_BAR = re.compile(r"\|\s*\d+/\d+ \[")  # tqdm's "| 0/1 [00:00<?, ?it/s]"


def one_error_line(err: str) -> str:
    """The one ``tif: error:`` line, last; progress bars drawn before the failure (stderr, with
    carriage returns) and ``tif:`` log lines (e.g. the precision picked) aside."""
    assert "Traceback" not in err, err
    lines = [s for s in re.split(r"[\r\n]", err) if s.strip() and not PROGRESS_BAR.search(s)]
    assert lines and lines[-1].startswith("tif: error: "), err
    assert not any(line.startswith("tif: error: ") for line in lines[:-1]), err
    assert all(line.startswith("tif: ") for line in lines), err
    return lines[-1]


def unlearn_args(model_dir, forget, out, *extra) -> list[str]:
    return ["unlearn", "--model", str(model_dir), "--forget", str(forget), "--out", str(out),
            "--max-steps", "1", "--batch-size", "2", *extra]  # fmt: skip


def finetune_args(model_dir, data, out, *extra) -> list[str]:
    return ["finetune", "--model", str(model_dir), "--data", str(data), "--out", str(out),
            "--max-steps", "1", "--batch-size", "2", *extra]  # fmt: skip


# Every command that writes a model folder to --out, with its arguments and its data file.
LOCKED_COMMANDS = {"unlearn": (unlearn_args, "forget"), "finetune": (finetune_args, "plain")}


def full_disk(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --------------------------------------------------------------------------- ENOSPC


def _fail_weights(monkeypatch) -> None:
    """The safetensors writer fills the disk halfway through the weights file."""
    import transformers.modeling_utils as modeling_utils

    def half_written(state_dict, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 1000)
        full_disk()

    monkeypatch.setattr(modeling_utils, "safe_save_file", half_written)


def _fail_final_rename(monkeypatch) -> None:
    """Everything is written, then the rename of the new folder onto --out fails."""
    real_rename = Path.rename

    def rename(self, target):
        if self.name.startswith(".model.tmp-"):
            full_disk()
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)


@pytest.mark.parametrize("fault", [_fail_weights, _fail_final_rename], ids=["weights", "rename"])
def test_full_disk_while_saving_keeps_the_previous_out(
    fault, tiny_model_dir, qa_files, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "model"
    shutil.copytree(tiny_model_dir, out)
    (out / "notes.txt").write_text("the previous run's folder", encoding="utf-8")
    before = snapshot(out)
    fault(monkeypatch)

    code = main(unlearn_args(tiny_model_dir, qa_files["forget"], out, "--overwrite"))

    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert "No space left on device" in line and "the previous folder is unchanged" in line
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["model", *(p.name for p in qa_files.values())]
    )


def test_full_disk_on_a_new_out_leaves_nothing(
    tiny_model_dir, qa_files, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "runs" / "model"
    _fail_weights(monkeypatch)
    code = main(unlearn_args(tiny_model_dir, qa_files["forget"], out))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "nothing was written" in line
    assert list((tmp_path / "runs").iterdir()) == []


# --------------------------------------------------------------------------- lock


def _lock_holder(out: Path) -> subprocess.Popen:
    """Another process that holds --out's lock until it is killed."""
    code = textwrap.dedent(
        f"""
        import time
        from tif_unlearn.locking import output_lock
        with output_lock({str(out)!r}):
            print("locked", flush=True)
            time.sleep(120)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


@pytest.mark.parametrize("command", LOCKED_COMMANDS)
def test_second_run_on_the_same_out_is_refused_until_the_first_dies(
    command, tiny_model_dir, qa_files, tmp_path, capsys
):
    make_args, data = LOCKED_COMMANDS[command]
    out = tmp_path / "model"
    holder = _lock_holder(out)
    try:
        code = main(make_args(tiny_model_dir, qa_files[data], out))
        line = one_error_line(capsys.readouterr().err)
        assert code == 2
        assert f"another tif run (pid {holder.pid}) is writing to --out {out}" in line
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The kernel released the lock of the killed process: the next run proceeds.
    assert main(make_args(tiny_model_dir, qa_files[data], out)) == 0
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize("command", LOCKED_COMMANDS)
def test_other_out_folders_are_not_locked(command, tiny_model_dir, qa_files, tmp_path):
    make_args, data = LOCKED_COMMANDS[command]
    holder = _lock_holder(tmp_path / "first")
    try:
        assert main(make_args(tiny_model_dir, qa_files[data], tmp_path / "second")) == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)


# --------------------------------------------------------------------------- eval results


def _eval_args(model_dir, data, out) -> list[str]:
    return ["eval", "muse", "--model", str(model_dir), "--data-dir", str(data),
            "--max-items", "2", "--out", str(out)]  # fmt: skip


def _interrupt_results_write(monkeypatch, exception: BaseException) -> None:
    """Half of the results written to the temporary file, then ``exception``."""
    real_write_text = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name.endswith(".json.tmp"):
            real_write_text(self, data[: len(data) // 2], *args, **kwargs)
            raise exception
        return real_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)


@pytest.mark.parametrize(
    ("exception", "code"),
    [(KeyboardInterrupt(), 130), (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), 2)],
    ids=["interrupted", "disk-full"],
)
def test_interrupted_eval_keeps_the_previous_results_and_reruns_cleanly(
    exception, code, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    data = write_muse_folder(tmp_path / "muse-news")
    out = tmp_path / "results" / "muse.json"
    assert main(_eval_args(tiny_model_dir, data, out)) == 0
    previous = out.read_bytes()
    capsys.readouterr()

    with monkeypatch.context() as patch:
        _interrupt_results_write(patch, exception)
        assert main(_eval_args(tiny_model_dir, data, out)) == code
    err = capsys.readouterr().err
    if code == 2:
        assert "No space left on device" in one_error_line(err)
    assert out.read_bytes() == previous  # never a half-written results file
    assert sorted(p.name for p in out.parent.iterdir()) == ["muse.json"]  # no temporary file

    out.unlink()
    assert main(_eval_args(tiny_model_dir, data, out)) == 0  # a clean restart
    assert set(json.loads(out.read_text(encoding="utf-8"))["summary"]) >= {"verbmem_f1"}
