"""Evaluation during training (``--eval-every``, ``--keep-best``): TOFU forget/retain metrics
every N steps, the best weights kept. The options are checked with their data before any model
is loaded; the callback's model work goes through the same code as ``tif eval tofu``.

Every rank evaluates; with ``--keep-best`` rank 0 alone decides and saves the best weights into
``<out>.best/`` (beside ``--out``, so that every rank can read them back), and the folder is
removed once every rank has restored them.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from safetensors.torch import load_file
from transformers import TrainerCallback

from ..config.schema import UnlearnConfig
from ..errors import TifError
from ..evaluate.options import TofuEvalOptions
from ..evaluate.tofu import evaluate_tofu
from ..evaluate.tofu_data import load_eval_rows
from ..evaluate.tofu_metrics import METRIC_DIRECTIONS, improves, set_metrics
from .distributed import barrier, is_main_process, run_on_main
from .lora import load_state_into

log = logging.getLogger("tif_unlearn")
TRAINING_EVAL_SETS = ("forget", "retain")  # the sets evaluated every --eval-every steps
KEEP_BEST_METRICS = tuple(name for s in TRAINING_EVAL_SETS for name in set_metrics(s))


def best_dir(out: str | Path) -> Path:
    """``<out>.best``: where ``--keep-best`` keeps the best weights during the run."""
    out = Path(os.path.abspath(out))
    return out.with_name(out.name + ".best")


def parse_keep_best(spec: str) -> tuple[str, str]:
    """``METRIC`` or ``METRIC:min|max`` -> (metric, direction); without a direction, the
    metric's own (:data:`tofu_metrics.METRIC_DIRECTIONS`)."""
    metric, _, direction = spec.partition(":")
    if metric not in KEEP_BEST_METRICS:
        known = ", ".join(KEEP_BEST_METRICS)
        raise TifError(f"--keep-best: unknown metric {metric!r}; choose one of: {known}")
    direction = direction or METRIC_DIRECTIONS[metric]
    if direction not in ("min", "max"):
        raise TifError(f"--keep-best {spec}: direction must be min or max")
    return metric, direction


class EvalCallback(TrainerCallback):
    """Evaluate every ``every`` steps and at the end; optionally keep the best weights."""

    def __init__(
        self,
        tokenizer,
        options: TofuEvalOptions,
        every: int,
        best_folder: Path,
        keep_best: str | None = None,
    ):
        self.tokenizer, self.options, self.every = tokenizer, options, every
        self.best_folder = best_folder
        self.keep_best = parse_keep_best(keep_best) if keep_best else None
        for name in options.sets:  # fail on bad eval data before training, not at step N
            load_eval_rows(name, options)
        self.history: list[dict] = []
        self.best: dict | None = None

    def _evaluate(self, model, step: int) -> None:
        results = evaluate_tofu(model, self.tokenizer, self.options)
        entry = {"step": step, **results["summary"]}
        self.history.append(entry)
        log.info(
            "eval at step %d: %s",
            step,
            ", ".join(
                f"{k}={v:.4g}" for k, v in entry.items() if k != "step" and isinstance(v, float)
            ),
        )
        if self.keep_best:
            self._maybe_keep(model, entry)

    def _maybe_keep(self, model, entry: dict) -> None:
        metric, direction = self.keep_best
        if metric not in entry:
            raise TifError(f"--keep-best: unknown metric {metric!r}; have {', '.join(entry)}")
        # Rank 0's decision for every rank (their evaluations may differ in the last digits).
        self.best = run_on_main(lambda: self._save_if_better(model, entry, metric, direction))

    def _save_if_better(self, model, entry: dict, metric: str, direction: str) -> dict:
        value = entry[metric]
        if self.best is not None and not improves(value, self.best["value"], direction):
            return self.best
        shutil.rmtree(self.best_folder, ignore_errors=True)  # no files of an older save left
        model.save_pretrained(self.best_folder, safe_serialization=True)
        return {"step": entry["step"], "metric": metric, "value": value}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 and state.global_step < state.max_steps:
            self._evaluate(model, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._evaluate(model, state.global_step)

    def restore_best(self, model) -> None:
        """Load the best evaluated weights into ``model`` (no-op without --keep-best)."""
        if self.best is None:
            return
        barrier()  # rank 0 has finished saving
        weights = {}
        for shard in sorted(self.best_folder.glob("*.safetensors")):
            weights.update(load_file(str(shard)))
        load_state_into(model, weights)  # a LoRA run saved (and restores) adapter weights only
        barrier()  # every rank has read them
        if is_main_process():
            shutil.rmtree(self.best_folder, ignore_errors=True)
        log.info(
            "kept the weights of step %d (%s = %.4g)",
            self.best["step"],
            self.best["metric"],
            self.best["value"],
        )


def eval_options(config: UnlearnConfig) -> TofuEvalOptions | None:
    """The --eval-every options, validated with their data before any model is loaded."""
    if not config.eval_every:
        return None
    options = TofuEvalOptions(
        data_dir=config.eval_data_dir or "auto",
        forget_split=config.eval_forget_split,
        max_items=config.eval_max_items,
        max_new_tokens=32,
        sets=TRAINING_EVAL_SETS,
    )
    for name in options.sets:
        load_eval_rows(name, options)
    if config.keep_best:
        parse_keep_best(config.keep_best)
    return options


def eval_callback(config: UnlearnConfig, options, tokenizer):
    """The evaluation-during-training callback, or None without --eval-every."""
    if options is None:
        return None
    folder = best_dir(config.out)
    return EvalCallback(tokenizer, options, config.eval_every, folder, config.keep_best)
