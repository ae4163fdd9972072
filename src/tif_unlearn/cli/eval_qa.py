"""`tif eval qa`: scores and a leak audit of any forget set (see ``evaluate/qa.py``)."""

from __future__ import annotations

import argparse

from ..train.precision import add_eval_precision_options, apply_eval_precision
from .results_file import check_results_path, write_results


def cmd_eval_qa(args: argparse.Namespace) -> int:
    from ..evaluate.qa import evaluate_qa
    from ..evaluate.qa_items import QAEvalFiles, QAEvalOptions
    from ..evaluate.qa_report import qa_table

    options = QAEvalOptions(
        identifier=args.identifier,
        leak_samples=args.leak_samples,
        temperature=args.temperature,
        seed=args.seed,
        format_shift=not args.no_format_shift,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        window_length=args.window_length,
        dtype=apply_eval_precision(args),
    )
    files = QAEvalFiles(args.model, args.forget, args.retain, args.holdout, args.reference)
    check_results_path(args.out)
    results = evaluate_qa(files, options)
    write_results(results, args.out)
    print(qa_table(results))
    print(f"results written to {args.out}")
    return 0


def add_eval_qa_parser(kinds) -> None:
    qa = kinds.add_parser(
        "qa", help="your own QA/text records: scores, leak audit, membership inference"
    )
    qa.add_argument("--model", required=True, help="model to evaluate")
    qa.add_argument("--forget", required=True, help="forget records (.json/.jsonl; QA or text)")
    qa.add_argument("--retain", help="retain records (utility)")
    qa.add_argument("--holdout", help="records never trained on (membership inference)")
    qa.add_argument("--reference", help="the model before unlearning (adds before and change)")
    qa.add_argument(
        "--identifier",
        default="phrases",
        help="marks UW in forget records without annotation (default: %(default)s)",
    )
    qa.add_argument(
        "--leak-samples",
        type=int,
        default=8,
        help="N of the best-of-N leak; 0: none (default: %(default)s)",
    )
    qa.add_argument(
        "--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)"
    )
    qa.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    qa.add_argument(
        "--no-format-shift", action="store_true", help="skip the questions in other forms"
    )
    qa.add_argument("--batch-size", type=int, default=16, help="batch size (default: %(default)s)")
    qa.add_argument(
        "--max-new-tokens",
        type=int,
        default=64,
        help="greedy and sampled answer length (default: %(default)s)",
    )
    qa.add_argument(
        "--window-length",
        type=int,
        default=128,
        help="tokens per window of a text record (default: %(default)s)",
    )
    qa.add_argument("--out", required=True, help="results .json")
    add_eval_precision_options(qa)
    qa.set_defaults(handler=cmd_eval_qa)
