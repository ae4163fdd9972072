"""`tif eval tofu`, `tif eval muse` and `tif eval aggregate` (`tif eval qa`: ``eval_qa.py``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from ..devices import on_device
from ..errors import TifError
from ..evaluate.options import MuseEvalOptions, TofuEvalOptions
from ..train.precision import EvalPrecision, apply_eval_precision
from .options import Command, Flags
from .results_file import ResultsFile, check_results_path, write_results


@dataclass
class EvaluatedModel:
    model: str = field(metadata={"help": "model to evaluate"})


@dataclass
class RetainModel:
    """The TOFU retain model (for Forget Quality), or its results file."""

    retain_model: str | None = field(
        default=None, metadata={"help": "retain model (never saw the forget set)"}
    )
    retain_results: str | None = field(
        default=None, metadata={"help": "the retain model's results.json"}
    )

    def __post_init__(self):
        if self.retain_model and self.retain_results:
            raise TifError("give --retain-model or --retain-results, not both")


@dataclass
class AggregateLogs:
    forget_logs: str = field(metadata={"help": "logs folder of the model"})
    retain_logs: str | None = field(
        default=None, metadata={"help": "logs folder of the retain model"}
    )


MODEL, RETAIN, RESULTS = Flags(EvaluatedModel), Flags(RetainModel), Flags(ResultsFile)
PRECISION = Flags(EvalPrecision, show_defaults=True)
TOFU_OPTIONS = Flags(TofuEvalOptions, skip=("sets", "retain_questions", "utility_items"))
MUSE_OPTIONS = Flags(
    MuseEvalOptions, skip=("verbmem_new_tokens", "knowmem_new_tokens", "max_length")
)


def retain_reference(retain: RetainModel):
    """The retain model's numbers from ``--retain-results`` (None without it)."""
    import json
    from pathlib import Path

    from ..evaluate.tofu_reference import reference_from_results

    if not retain.retain_results:
        return None
    path = Path(retain.retain_results)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TifError(f"cannot read --retain-results {path}: {err}") from err
    return reference_from_results(payload, str(path))


def free_device_memory(device: str) -> None:
    """Give the memory of the models just dropped back (to the GPU, for the next model)."""
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


def retain_model_reference(spec: str, options, dtype: str, device: str):
    """The retain model's numbers from the model itself; it is freed before this returns, so
    that the evaluated model, loaded next, never shares the GPU with it."""
    from ..evaluate.tofu import reference_from_model
    from ..models import load_model

    model, tokenizer = on_device(load_model(spec, dtype=dtype), device)
    reference = reference_from_model(model, tokenizer, options, spec)
    del model, tokenizer
    free_device_memory(device)
    return reference


def save_and_show(results: dict, args: argparse.Namespace, precision: tuple, table) -> int:
    """Record model, dtype and device in ``results``, write them to ``--out``, print the table."""
    dtype, device = precision
    results.update(model=args.model, dtype=dtype, device=device)
    write_results(results, args.out)
    print(table(results))
    print(f"evaluated on {device} in {dtype}; results written to {args.out}")
    return 0


def cmd_eval_tofu(args: argparse.Namespace) -> int:
    from ..evaluate.tofu import evaluate_tofu
    from ..evaluate.tofu_data import check_eval_data
    from ..evaluate.tofu_metrics import summary_table
    from ..models import load_model

    options, retain = TOFU_OPTIONS.build(args), RETAIN.build(args)
    check_results_path(args.out)
    reference = retain_reference(retain)
    check_eval_data(options, reference)
    dtype, device = apply_eval_precision(PRECISION.build(args))
    if retain.retain_model:
        reference = retain_model_reference(retain.retain_model, options, dtype, device)
    model, tokenizer = on_device(load_model(args.model, dtype=dtype), device)
    results = evaluate_tofu(model, tokenizer, options, reference)
    return save_and_show(results, args, (dtype, device), summary_table)


def cmd_eval_muse(args: argparse.Namespace) -> int:
    from ..evaluate.muse import check_muse_data, evaluate_muse, muse_table
    from ..models import load_model

    options = MUSE_OPTIONS.build(args)
    check_results_path(args.out)
    check_muse_data(options)
    dtype, device = apply_eval_precision(PRECISION.build(args))
    model, tokenizer = on_device(load_model(args.model, dtype=dtype), device)
    results = evaluate_muse(model, tokenizer, options)
    return save_and_show(results, args, (dtype, device), muse_table)


def cmd_eval_aggregate(args: argparse.Namespace) -> int:
    import json

    from ..evaluate.tofu_logs import aggregate_command

    print(json.dumps(aggregate_command(args.forget_logs, args.retain_logs), indent=2))
    return 0


TOFU = Command(
    "tofu",
    "TOFU: forget quality, model utility, MIA",
    cmd_eval_tofu,
    (MODEL, TOFU_OPTIONS, RETAIN, RESULTS, PRECISION),
)
MUSE = Command(
    "muse",
    "MUSE: VerbMem, KnowMem, PrivLeak",
    cmd_eval_muse,
    (MODEL, MUSE_OPTIONS, RESULTS, PRECISION),
)
AGGREGATE = Command(
    "aggregate",
    "aggregate original TOFU evaluation logs",
    cmd_eval_aggregate,
    (Flags(AggregateLogs),),
)
