"""The ``tif`` command: one parser, every subcommand's flags generated from the dataclasses it
declares (``options.py``); ``finetune``, ``unlearn`` and ``demo`` here, ``eval`` in ``eval.py``
and ``eval_qa.py``, ``identify`` in ``identify.py``.

User errors print one line on stderr (``tif: error: ...``) and exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import typing
from dataclasses import dataclass, field

from ..config import FinetuneConfig, UnlearnConfig, build_config
from ..demo import DemoConfig
from ..errors import TifError
from ..locking import output_lock
from .ask import ASK
from .card import CARD
from .eval import AGGREGATE, MUSE, TOFU
from .eval_qa import QA
from .identify import IDENTIFY
from .options import Command, Flags
from .report import REPORT

log = logging.getLogger("tif_unlearn")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as a single line and exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        raise TifError(f"{self.prog}: {message}")


@dataclass
class ConfigFile:
    config: str | None = field(default=None, metadata={"help": "flat YAML file of options"})


FINETUNE_OPTIONS = Flags(FinetuneConfig, yaml=True)
UNLEARN_OPTIONS = Flags(UnlearnConfig, yaml=True)


def cmd_finetune(args: argparse.Namespace) -> int:
    from ..train import run_finetune

    config = build_config(FinetuneConfig, args.config, FINETUNE_OPTIONS.values(args))
    with output_lock(config.out):
        out = run_finetune(config)
    print(f"fine-tuned model written to {out}")
    return 0


def cmd_unlearn(args: argparse.Namespace) -> int:
    from ..train import run_unlearn

    config = build_config(UnlearnConfig, args.config, UNLEARN_OPTIONS.values(args))
    with output_lock(config.out):
        out = run_unlearn(config)
    print(f"unlearned model written to {out}")
    return 0


# what `tif demo` leaves to DemoConfig's defaults
DEMO_OPTIONS = Flags(
    DemoConfig,
    skip=(
        *("finetune_epochs", "finetune_lr", "unlearn_epochs", "unlearn_lr", "batch_size"),
        *("max_new_tokens", "leak_samples", "method_options"),
    ),
)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo
    from ..methods import METHODS

    config = DEMO_OPTIONS.build(args)
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise TifError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    run_demo(config)
    return 0


FINETUNE = Command(
    "finetune",
    "supervised fine-tuning on QA records or texts",
    cmd_finetune,
    (FINETUNE_OPTIONS, Flags(ConfigFile)),
)
UNLEARN = Command(
    "unlearn",
    "unlearn a forget set from a model",
    cmd_unlearn,
    (UNLEARN_OPTIONS, Flags(ConfigFile)),
)
DEMO = Command(
    "demo", "inject and then unlearn facts about fictitious people", cmd_demo, (DEMO_OPTIONS,)
)
EVAL_COMMANDS = (TOFU, MUSE, AGGREGATE, QA)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tif", description="Targeted Information Forgetting for LLMs")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    FINETUNE.add_to(sub)
    UNLEARN.add_to(sub)
    evaluate = sub.add_parser("eval", help="evaluate a model on TOFU, MUSE or your own records")
    kinds = evaluate.add_subparsers(dest="benchmark", required=True, parser_class=OneLineParser)
    for command in EVAL_COMMANDS:
        command.add_to(kinds)
    IDENTIFY.add_to(sub)
    REPORT.add_to(sub)
    ASK.add_to(sub)
    CARD.add_to(sub)
    DEMO.add_to(sub)
    return parser


def quiet_progress_bars() -> None:
    """No progress bars when stderr is not a terminal (a log file, a pipe, CI): their carriage
    returns would run into the tables printed after them. Read by tqdm when first imported
    (``TQDM_DISABLE``); ``tif identify`` passes ``progress`` itself."""
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")


def setup_logging(verbose: bool) -> None:
    quiet_progress_bars()
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
    bars = os.environ.get("TQDM_DISABLE")  # set back on return (main called in-process)
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
    finally:
        if bars is None:
            os.environ.pop("TQDM_DISABLE", None)
