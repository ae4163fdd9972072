"""The ``tif`` command: one function per subcommand.

User errors print one line on stderr (``tif: error: ...``) and exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import typing
from dataclasses import MISSING, fields

from .config import FinetuneConfig, UnlearnConfig, build_config
from .errors import TifError

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
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        if base[0] is bool:
            parser.add_argument(flag, dest=f.name, action="store_const", const=True, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=base[0], help=help_text)


def _overrides(args: argparse.Namespace, cls) -> dict:
    return {f.name: getattr(args, f.name, None) for f in fields(cls)}


def cmd_finetune(args: argparse.Namespace) -> int:
    from .pipeline import run_finetune

    config = build_config(FinetuneConfig, args.config, _overrides(args, FinetuneConfig))
    out = run_finetune(config)
    print(f"fine-tuned model written to {out}")
    return 0


def cmd_unlearn(args: argparse.Namespace) -> int:
    from .pipeline import run_unlearn

    config = build_config(UnlearnConfig, args.config, _overrides(args, UnlearnConfig))
    out = run_unlearn(config)
    print(f"unlearned model written to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tif", description="Targeted Information Forgetting for LLMs")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    finetune = sub.add_parser("finetune", help="supervised fine-tuning on QA records")
    add_dataclass_options(finetune, FinetuneConfig)
    finetune.add_argument("--config", help="flat YAML file of options")
    finetune.set_defaults(handler=cmd_finetune)
    unlearn = sub.add_parser("unlearn", help="unlearn a forget set from a model")
    add_dataclass_options(unlearn, UnlearnConfig)
    unlearn.add_argument("--config", help="flat YAML file of options")
    unlearn.set_defaults(handler=cmd_unlearn)
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
    except ImportError:  # pragma: no cover
        pass


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        setup_logging(args.verbose)
        return args.handler(args)
    except TifError as err:
        print(f"tif: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tif: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
