"""`tif card`: write the scores of `tif eval` results files into a model folder's card."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TifError
from .options import Command, Flags


@dataclass
class CardArgs:
    results: tuple[str, ...] = field(
        default=(),
        metadata={"help": "tif eval qa | tofu | muse results files", "positional": True},
    )
    model: str = field(default="", metadata={"help": "the evaluated model folder (its README.md)"})

    def __post_init__(self):
        if not self.model:
            raise TifError("--model is required: the model folder whose card gets the scores")


CARD_OPTIONS = Flags(CardArgs)


def update_card(folder: Path, results: tuple[str, ...]) -> Path:
    """Write the scores of ``results`` into ``folder/README.md`` (replaced whole: written
    beside it, then renamed)."""
    from ..lineage import read_results, with_results

    readme = folder / "README.md"
    if not readme.is_file():
        raise TifError(f"{folder} has no model card (README.md); tif writes one for its runs")
    scores = {}
    for path in results:
        benchmark, metrics = read_results(path)
        scores.setdefault(benchmark, {}).update(metrics)
    text = with_results(readme.read_text(encoding="utf-8"), scores, folder.name)
    tmp = readme.with_name(f".README.md.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(readme)
    except OSError as err:
        raise TifError(f"could not write {readme}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return readme


def cmd_card(args: argparse.Namespace) -> int:
    card = CARD_OPTIONS.build(args)
    readme = update_card(Path(card.model), card.results)
    print(f"scores of {len(card.results)} results file(s) written to {readme}")
    return 0


CARD = Command(
    "card", "write tif eval scores into a model folder's card", cmd_card, (CARD_OPTIONS,)
)
