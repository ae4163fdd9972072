"""The ``tif`` command: one function per subcommand.

User errors print one line on stderr (``tif: error: ...``) and exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from dataclasses import MISSING, fields

from ..config import FinetuneConfig, UnlearnConfig, build_config
from ..errors import TifError
from ..locking import output_lock
from ..train.precision import add_eval_precision_options, apply_eval_precision
from .eval_qa import add_eval_qa_parser
from .identify import add_identify_parser
from .results_file import check_results_path, write_results

log = logging.getLogger("tif_unlearn")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as a single line and exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        raise TifError(f"{self.prog}: {message}")


def add_dataclass_options(parser: argparse.ArgumentParser, cls, skip=()) -> None:
    """One ``--option`` per dataclass field; defaults stay None so YAML values are not overridden."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        hint = hints[f.name]
        base = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        default = None if f.default is MISSING else f.default
        help_text = f.metadata.get("help", "")
        if "(default:" not in help_text:
            help_text += f" (default: {default})"
        if base[0] is bool:
            parser.add_argument(flag, dest=f.name, action="store_const", const=True, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=base[0], help=help_text)


def _overrides(args: argparse.Namespace, cls) -> dict:
    return {f.name: getattr(args, f.name, None) for f in fields(cls)}


def cmd_finetune(args: argparse.Namespace) -> int:
    from ..train import run_finetune

    config = build_config(FinetuneConfig, args.config, _overrides(args, FinetuneConfig))
    with output_lock(config.out):
        out = run_finetune(config)
    print(f"fine-tuned model written to {out}")
    return 0


def cmd_unlearn(args: argparse.Namespace) -> int:
    from ..train import run_unlearn

    config = build_config(UnlearnConfig, args.config, _overrides(args, UnlearnConfig))
    with output_lock(config.out):
        out = run_unlearn(config)
    print(f"unlearned model written to {out}")
    return 0


def cmd_eval_tofu(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ..evaluate.tofu import evaluate_tofu, reference_from_model
    from ..evaluate.tofu_data import TofuEvalOptions, check_eval_data
    from ..evaluate.tofu_metrics import summary_table
    from ..evaluate.tofu_reference import reference_from_results
    from ..models import load_model

    options = TofuEvalOptions(
        data_dir=args.data_dir,
        forget_split=args.forget_split,
        max_items=args.max_items,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
    )
    if args.retain_model and args.retain_results:
        raise TifError("give --retain-model or --retain-results, not both")
    check_results_path(args.out)
    reference = None
    if args.retain_results:
        path = Path(args.retain_results)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise TifError(f"cannot read --retain-results {path}: {err}") from err
        reference = reference_from_results(payload, str(path))
    check_eval_data(options, reference)
    dtype = apply_eval_precision(args)
    if args.retain_model:
        retain_model, retain_tokenizer = load_model(args.retain_model, dtype=dtype)
        reference = reference_from_model(retain_model, retain_tokenizer, options, args.retain_model)
        del retain_model
    model, tokenizer = load_model(args.model, dtype=dtype)
    results = evaluate_tofu(model, tokenizer, options, reference)
    results["model"], results["dtype"] = args.model, dtype
    write_results(results, args.out)
    print(summary_table(results))
    print(f"results written to {args.out}")
    return 0


def cmd_eval_aggregate(args: argparse.Namespace) -> int:
    import json

    from ..evaluate.tofu_logs import aggregate_command

    print(json.dumps(aggregate_command(args.forget_logs, args.retain_logs), indent=2))
    return 0


def cmd_eval_muse(args: argparse.Namespace) -> int:
    from ..evaluate.muse import MuseEvalOptions, check_muse_data, evaluate_muse, muse_table
    from ..models import load_model

    options = MuseEvalOptions(
        data_dir=args.data_dir,
        corpus=args.corpus,
        max_items=args.max_items,
        batch_size=args.batch_size,
        retain_auc=args.retain_auc,
    )
    check_results_path(args.out)
    check_muse_data(options)
    dtype = apply_eval_precision(args)
    model, tokenizer = load_model(args.model, dtype=dtype)
    results = evaluate_muse(model, tokenizer, options)
    results["model"], results["dtype"] = args.model, dtype
    write_results(results, args.out)
    print(muse_table(results))
    print(f"results written to {args.out}")
    return 0


def add_eval_parsers(sub) -> None:
    evaluate = sub.add_parser("eval", help="evaluate a model on TOFU, MUSE or your own records")
    kinds = evaluate.add_subparsers(dest="benchmark", required=True, parser_class=OneLineParser)
    tofu = kinds.add_parser("tofu", help="TOFU: forget quality, model utility, MIA")
    tofu.add_argument("--model", required=True, help="model to evaluate")
    tofu.add_argument("--data-dir", default="auto", help="TOFU folder, 'hub', or auto")
    tofu.add_argument("--forget-split", default="forget01", help="forget01 | forget05 | forget10")
    tofu.add_argument("--retain-model", help="retain model (never saw the forget set)")
    tofu.add_argument("--retain-results", help="the retain model's results.json")
    tofu.add_argument("--max-items", type=int, help="evaluate the first N items of each set")
    tofu.add_argument("--batch-size", type=int, default=16, help="scoring batch size")
    tofu.add_argument("--max-new-tokens", type=int, default=64, help="greedy answer length")
    tofu.add_argument("--out", required=True, help="results .json")
    add_eval_precision_options(tofu)
    tofu.set_defaults(handler=cmd_eval_tofu)
    muse = kinds.add_parser("muse", help="MUSE: VerbMem, KnowMem, PrivLeak")
    muse.add_argument("--model", required=True, help="model to evaluate")
    muse.add_argument("--data-dir", default="auto", help="MUSE folder, 'hub', or auto")
    muse.add_argument("--corpus", default="news", help="news | books")
    muse.add_argument("--max-items", type=int, help="first N items of each set")
    muse.add_argument("--batch-size", type=int, default=16, help="batch size")
    muse.add_argument("--retain-auc", type=float, help="the retrained model's Min-40%% AUC")
    muse.add_argument("--out", required=True, help="results .json")
    add_eval_precision_options(muse)
    muse.set_defaults(handler=cmd_eval_muse)
    aggregate = kinds.add_parser("aggregate", help="aggregate original TOFU evaluation logs")
    aggregate.add_argument("--forget-logs", required=True, help="logs folder of the model")
    aggregate.add_argument("--retain-logs", help="logs folder of the retain model")
    aggregate.set_defaults(handler=cmd_eval_aggregate)
    add_eval_qa_parser(kinds)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import DemoConfig, run_demo

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    from ..methods import METHODS

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise TifError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    config = DemoConfig(
        model=args.model,
        out=args.out,
        methods=methods,
        identifier=args.identifier,
        forget_person=args.forget_person,
        fresh=args.fresh,
    )
    run_demo(config)
    return 0


def add_demo_parser(sub) -> None:
    demo = sub.add_parser("demo", help="inject and then unlearn facts about fictitious people")
    demo.add_argument("--model", default="smollm2-135m", help="model to start from")
    demo.add_argument("--methods", default="tif,npo", help="comma-separated methods")
    demo.add_argument(
        "--identifier",
        default="combined",
        help="local identifier for TIF UW (combined = ner + frequency)",
    )
    demo.add_argument("--forget-person", type=int, default=0, help="which person to forget (0-3)")
    demo.add_argument("--out", default="runs/demo", help="output folder (models, report)")
    demo.add_argument("--fresh", action="store_true", help="redo every cached step")
    demo.set_defaults(handler=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tif", description="Targeted Information Forgetting for LLMs")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    finetune = sub.add_parser("finetune", help="supervised fine-tuning on QA records or texts")
    add_dataclass_options(finetune, FinetuneConfig)
    finetune.add_argument("--config", help="flat YAML file of options")
    finetune.set_defaults(handler=cmd_finetune)
    unlearn = sub.add_parser("unlearn", help="unlearn a forget set from a model")
    add_dataclass_options(unlearn, UnlearnConfig)
    unlearn.add_argument("--config", help="flat YAML file of options")
    unlearn.set_defaults(handler=cmd_unlearn)
    add_eval_parsers(sub)
    add_identify_parser(sub, OneLineParser)
    add_demo_parser(sub)
    return parser


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tif: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        # transformers' own bars ("Loading weights") only with --verbose: a failure right
        # after loading must still be the one line on stderr
        if verbose:
            hf_logging.enable_progress_bar()
        else:
            hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


MAX_ERROR_CHARS = 500


def one_line(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An error message as one line of at most ``limit`` characters (input values can be huge
    or hold newlines)."""
    text = " ".join(message.split())
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        setup_logging(args.verbose)
        return args.handler(args)
    except TifError as err:
        print(f"tif: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("tif: interrupted", file=sys.stderr)
        return 130
