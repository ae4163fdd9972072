"""Faults: resumable checkpoints in ``<out>.checkpoints/`` and a guard against NaN/inf.

The transformers Trainer writes ``checkpoint-<step>/`` (model, optimizer, scheduler, RNG and
trainer state; the data order follows from the seeded sampler and the step). Once a checkpoint is
fully written, ``CheckpointCallback`` adds ``tif_checkpoint.json`` holding the run's
*fingerprint* (every option that changes training, plus the data files' sha256): a folder
without it was cut short and is never resumed from. ``--out`` is only written at the very end
(``models.save_model``), so checkpoints live beside it, not in it, and go once the run succeeds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import signal
from pathlib import Path

import torch
from transformers import TrainerCallback

from ..config.builder import as_dict
from ..errors import TifError
from .distributed import barrier, is_main_process, run_on_main

MARKER = "tif_checkpoint.json"
KEEP = 2  # the newest may be cut short mid-save: keep the complete one before it
TEST_KILL_ENV = "TIF_TEST_KILL_AT_STEP"  # tests only: "STEP[:marked|unmarked[:RANK]]"
log = logging.getLogger("tif_unlearn")
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# Options that do not change the trained weights, so they may differ on --resume.
NOT_TRAINING = frozenset(
    {
        "out",
        "overwrite",
        "save_steps",
        "resume",
        "trust_remote_code",
        "allow_pickle",
        "eval_every",
        "eval_data_dir",
        "eval_forget_split",
        "eval_max_items",
        "gradient_checkpointing",  # recomputes activations: same weights
        "reference_batch_size",  # how the cached reference values are batched
    }
)


def checkpoint_dir(out: str | Path) -> Path:
    """``<out>.checkpoints``: a sibling of the output folder."""
    out = Path(os.path.abspath(out))
    return out.with_name(out.name + ".checkpoints")


def fingerprint(config, digests: dict[str, str | None]) -> dict:
    """The options that change training, and the input files' sha256, as plain JSON values."""
    values = {k: v for k, v in as_dict(config).items() if k not in NOT_TRAINING}
    return json.loads(json.dumps({**values, "sha256": digests}, default=str))


def save_options(config) -> dict:
    """TrainingArguments for checkpointing (and for seeing a NaN loss in the logs unfiltered)."""
    return {
        "save_strategy": "steps" if config.save_steps else "no",
        "save_steps": config.save_steps or 500,
        "save_total_limit": KEEP,
        "logging_nan_inf_filter": False,
    }


def trainer_output_dir(config, scratch: str | Path) -> str:
    return str(checkpoint_dir(config.out)) if config.save_steps else str(scratch)


def _step(folder: Path) -> int:
    match = _CHECKPOINT_RE.match(folder.name)
    return int(match.group(1)) if match else -1


def checkpoints(folder: Path) -> list[Path]:
    """Checkpoint folders (complete or not), oldest step first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _step(p) >= 0 and p.is_dir()), key=_step)


def last_complete_checkpoint(folder: Path) -> Path | None:
    complete = [p for p in checkpoints(folder) if (p / MARKER).is_file()]
    return complete[-1] if complete else None


def check_same_run(checkpoint: Path, current: dict) -> None:
    """Refuse to resume a checkpoint made with options that change training."""
    try:
        saved = json.loads((checkpoint / MARKER).read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, ValueError, KeyError) as err:
        raise TifError(f"--resume: cannot read {checkpoint / MARKER}: {err}") from err
    keys = sorted(set(saved) | set(current))
    differ = [k for k in keys if saved.get(k) != current.get(k)]
    if differ:
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in differ)
        raise TifError(
            f"--resume: {checkpoint} was made with other training options or data ({changes}); "
            "rerun with the original ones, or without --resume and with --overwrite"
        )


def prepare_checkpoints(config, current: dict) -> str | None:
    """Before the model is loaded: the checkpoint to resume from, or None for a fresh run.
    Decided (and stale checkpoints removed) by rank 0 alone; every rank gets its answer."""
    return run_on_main(lambda: _prepare_checkpoints(config, current))


def _prepare_checkpoints(config, current: dict) -> str | None:
    folder = checkpoint_dir(config.out)
    if not config.resume:
        if checkpoints(folder) and not config.overwrite:
            raise TifError(
                f"{folder} holds checkpoints of an unfinished run: pass --resume to continue "
                "it, or --overwrite to start again"
            )
        shutil.rmtree(folder, ignore_errors=True)
        return None
    if getattr(config, "keep_best", None):
        raise TifError("--resume cannot be combined with --keep-best (the best weights are lost)")
    last = last_complete_checkpoint(folder)
    if last is None:
        raise TifError(f"--resume: no complete checkpoint in {folder}")
    check_same_run(last, current)
    for stale in checkpoints(folder):
        if not (stale / MARKER).is_file():
            shutil.rmtree(stale)  # cut short mid-save: would confuse the rotation
    log.info("resuming from %s", last)
    return str(last)


def remove_checkpoints(out: str | Path) -> None:
    """After a successful run: the checkpoints are no longer needed."""
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)


def require_finite_weights(model, step: int, folder: Path | None = None) -> None:
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            raise TifError(f"step {step}: weight {name} holds NaN or inf; {_advice(folder)}")


def _advice(folder: Path | None = None) -> str:
    kept = last_complete_checkpoint(folder) if folder else None
    where = f"last good checkpoint kept: {kept}" if kept else "no checkpoint kept"
    return f"training diverged (try a lower --lr); nothing written to --out; {where}"


def _test_kill(step: int, point: str) -> None:
    """Tests only: SIGKILL this process right after checkpoint ``step`` was saved, before or
    after its marker; with a RANK, only that rank's process (the others run on)."""
    target, at, only_rank = (os.environ.get(TEST_KILL_ENV, "").split(":") + ["", ""])[:3]
    if target != str(step) or (at or "marked") != point:
        return
    if only_rank in ("", os.environ.get("RANK", "0")):
        os.kill(os.getpid(), signal.SIGKILL)


def write_marker(folder: Path, payload: dict) -> None:
    """Mark a checkpoint complete: ``tif_checkpoint.json``, written whole by a rename."""
    tmp = folder / f".{MARKER}.tmp"
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(folder / MARKER)


class CheckpointCallback(TrainerCallback):
    """Marks each checkpoint complete once the Trainer has written it: every rank writes its
    part (rank 0 the weights and optimizer, each rank its RNG state), so rank 0 writes the
    marker only when all of them have finished."""

    def __init__(self, run_fingerprint: dict):
        self.fingerprint = run_fingerprint

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        _test_kill(state.global_step, "unmarked")
        barrier()
        if is_main_process():
            write_marker(folder, {"step": state.global_step, "fingerprint": self.fingerprint})
        _test_kill(state.global_step, "marked")


class FiniteGuard(TrainerCallback):
    """Stop at the first NaN/inf loss or gradient norm, naming the optimizer step.

    Every step is logged (``logging_steps=1``) before any checkpoint of that step is saved, so
    this also checks the weights about to be saved: a checkpoint never holds NaN or inf.
    """

    def __init__(self, checkpoints_folder: Path | None):
        self.folder = checkpoints_folder

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                name = "gradient norm" if key == "grad_norm" else key
                raise TifError(
                    f"step {state.global_step}: {name} is {value}; {_advice(self.folder)}"
                )
        if control.should_save and model is not None:
            require_finite_weights(model, state.global_step, self.folder)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is not None:
            require_finite_weights(model, state.global_step, self.folder)


def fault_callbacks(config, run_fingerprint: dict) -> list[TrainerCallback]:
    """The NaN guard always; the checkpoint marker with ``--save-steps``."""
    folder = checkpoint_dir(config.out)
    guard = FiniteGuard(folder if config.save_steps or config.resume else None)
    return [guard, CheckpointCallback(run_fingerprint)] if config.save_steps else [guard]
