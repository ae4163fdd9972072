"""Evaluation during training (``--eval-every``, ``--keep-best``): its options, checked with
their data before any model is loaded, and the trainer callback."""

from __future__ import annotations

from pathlib import Path

from ..config.schema import UnlearnConfig


def eval_options(config: UnlearnConfig):
    """The --eval-every options, validated with their data before any model is loaded."""
    if not config.eval_every:
        return None
    from ..evaluate.during_training import parse_keep_best
    from ..evaluate.tofu import TofuEvalOptions, load_eval_rows

    options = TofuEvalOptions(
        data_dir=config.eval_data_dir or "auto",
        forget_split=config.eval_forget_split,
        max_items=config.eval_max_items,
        max_new_tokens=32,
        sets=("forget", "retain"),
    )
    for name in options.sets:
        load_eval_rows(name, options)
    if config.keep_best:
        parse_keep_best(config.keep_best)
    return options


def eval_callback(config: UnlearnConfig, options, tokenizer, scratch: Path):
    """The evaluation-during-training callback, or None without --eval-every."""
    if options is None:
        return None
    from ..evaluate.during_training import EvalCallback

    return EvalCallback(tokenizer, options, config.eval_every, scratch, config.keep_best)
