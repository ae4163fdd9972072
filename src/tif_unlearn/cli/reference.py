"""Generate the CLI reference (docs/cli.md) from the argument parser (kept in sync by a test).

`python -m tif_unlearn.cli.reference --write` rewrites the block between the markers in
docs/cli.md; `tests/cli/test_cli_reference.py` fails when that page is out of date.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BEGIN, END = "<!-- cli-reference:begin -->", "<!-- cli-reference:end -->"
WIDTH = "100"
PAGE = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(parser: argparse.ArgumentParser, prefix: str):
    children = _subparsers(parser)
    if not children:
        yield prefix, parser
    for name, child in children.items():
        yield from _walk(child, f"{prefix} {name}")


def reference() -> str:
    from .app import build_parser

    os.environ["COLUMNS"] = WIDTH
    blocks = []
    for command, parser in _walk(build_parser(), "tif"):
        parser.prog = command
        blocks.append(f"### `{command}`\n\n```\n{parser.format_help().rstrip()}\n```\n")
    return "\n".join(blocks)


def reference_block(page: str) -> str:
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    return page[start:end].strip("\n")


def main() -> int:
    text = PAGE.read_text(encoding="utf-8")
    if "--write" in sys.argv:
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        PAGE.write_text(text[:start] + "\n" + reference() + "\n" + text[end:], encoding="utf-8")
        return 0
    print(reference())
    return 0


if __name__ == "__main__":
    sys.exit(main())
