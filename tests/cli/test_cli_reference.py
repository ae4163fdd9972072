"""The CLI reference in docs/cli.md is the parser's help text, regenerated."""

from __future__ import annotations

from pathlib import Path

from tif_unlearn.cli.reference import PAGE, reference, reference_block

CLI_PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_generator_writes_docs_cli_md():
    assert PAGE == CLI_PAGE


def test_docs_cli_reference_matches_the_parser():
    expected = reference().strip("\n")
    actual = reference_block(CLI_PAGE.read_text(encoding="utf-8"))
    assert actual == expected, (
        "docs/cli.md CLI reference is stale: python -m tif_unlearn.cli.reference --write"
    )


def test_reference_covers_every_subcommand():
    text = reference()
    for command in (
        "tif finetune",
        "tif unlearn",
        "tif identify",
        "tif demo",
        "tif report",
        "tif eval tofu",
        "tif eval muse",
        "tif eval aggregate",
        "tif eval qa",
    ):
        assert f"### `{command}`" in text
    assert "--lambda-pl" in text and "--keep-best" in text
