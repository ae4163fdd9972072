"""`tif eval qa`: scores and a leak audit of any forget set (see ``evaluate/qa.py``)."""

from __future__ import annotations

import argparse

from ..evaluate.options import QAEvalFiles, QAEvalOptions
from ..train.precision import apply_eval_precision
from .eval import PRECISION
from .options import Command, Flags
from .results_file import ResultsFile, check_results_path, write_results

FILES = Flags(QAEvalFiles)
# dtype: the weights dtype --dtype (EvalPrecision) stands for on this machine
QA_OPTIONS = Flags(
    QAEvalOptions, skip=("max_length", "min_k", "dtype", "device"), show_defaults=True
)


def cmd_eval_qa(args: argparse.Namespace) -> int:
    from ..evaluate.qa import evaluate_qa
    from ..evaluate.qa_report import qa_table

    dtype, device = apply_eval_precision(PRECISION.build(args))
    options = QA_OPTIONS.build(args, dtype=dtype, device=device)
    files = FILES.build(args)
    check_results_path(args.out)
    results = evaluate_qa(files, options)
    write_results(results, args.out)
    print(qa_table(results))
    print(f"evaluated on {device} in {dtype}; results written to {args.out}")
    return 0


QA = Command(
    "qa",
    "your own QA/text records: scores, leak audit, membership inference",
    cmd_eval_qa,
    (FILES, QA_OPTIONS, Flags(ResultsFile), PRECISION),
)
