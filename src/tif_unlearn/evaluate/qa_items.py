"""`tif eval qa` inputs: the records of the input files (options and files: :mod:`options`) and
the evaluated items.

A QA record is one item (its question is the prompt, its answer the truth). A text record is
cut into windows of ``window_length`` tokens; the first half of a window is the prompt and the
rest the truth, with the UW spans clipped to it. Forget records without ``unwanted_spans`` get
them from the chosen identifier before any model is loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..data.loaders import load_records
from ..data.records import QARecord, Record, Span, TextRecord
from ..data.windows import clip_spans, window_records
from . import leak
from .options import QAEvalFiles, QAEvalOptions

log = logging.getLogger("tif_unlearn")


@dataclass(frozen=True)
class Item:
    """One evaluated example: what is scored (``record``), the prompt the model is asked, the
    true answer / continuation and its UW spans."""

    record: Record
    prompt: str
    truth: str
    truth_spans: tuple[Span, ...] | None
    is_text: bool

    @property
    def phrases(self) -> list[str]:
        return leak.unwanted_phrases(self.truth, self.truth_spans, self.prompt)


@dataclass
class EvalSets:
    forget: list[Item]
    retain: list[Item] | None = None
    holdout: list[Item] | None = None
    utility: list[Item] | None = None


def load_eval_records(path: str, what: str) -> list[Record]:
    records = load_records(path)  # DataError (exit 2, one line) on any bad row
    log.debug("%s: %d records from %s", what, len(records), path)
    return records


def annotate_missing(records: list[Record], identifier: str) -> list[Record]:
    """Records without ``unwanted_spans`` get them from ``identifier``; annotated ones are kept."""
    from ..identify import identify

    missing = [i for i, r in enumerate(records) if r.unwanted_spans is None]
    if not missing:
        return records
    log.info("marking unwanted words of %d records with '%s'", len(missing), identifier)
    result = identify(identifier, [records[i] for i in missing])
    if result.failures:
        log.warning("the identifier failed on %d records: no UW there", len(result.failures))
    annotated = list(records)
    for index, record in zip(missing, result.records, strict=True):
        annotated[index] = record
    return annotated


def qa_item(record: QARecord) -> Item:
    return Item(record, record.question, record.answer, record.unwanted_spans, is_text=False)


def window_item(tokenizer, window: TextRecord) -> Item:
    """A text window as prompt (its first half of tokens) and continuation (the rest)."""
    enc = tokenizer(window.text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    split = offsets[len(offsets) // 2][0] if len(offsets) > 1 else len(window.text)
    spans = window.unwanted_spans
    truth_spans = None if spans is None else clip_spans(spans, split, len(window.text))
    truth = window.text[split:]
    return Item(window, window.text[:split], truth, truth_spans, is_text=True)


def make_items(tokenizer, records: Sequence[Record], options: QAEvalOptions) -> list[Item]:
    if all(isinstance(r, QARecord) for r in records):
        return [qa_item(r) for r in records]
    windows = window_records(records, tokenizer, length=options.window_length, short_texts="keep")
    return [window_item(tokenizer, w) for w in windows]


def utility_records(spec: str) -> list[Record] | None:
    """The held-out utility set: the shipped one, a file's records, or None for ``none``."""
    from . import qa_utility

    if spec == qa_utility.NONE:
        return None
    if spec == qa_utility.BUILTIN:
        return qa_utility.builtin_records()
    return load_eval_records(spec, "utility")


def read_records(files: QAEvalFiles, options: QAEvalOptions) -> dict[str, list[Record]]:
    """Every input file's records (forget annotated) before any model is loaded, so bad input
    fails fast."""
    records = {
        name: load_eval_records(getattr(files, name), name)
        for name in ("retain", "holdout")
        if getattr(files, name)
    }
    forget = annotate_missing(load_eval_records(files.forget, "forget"), options.identifier)
    utility = utility_records(files.utility)
    return {"forget": forget} | records | ({"utility": utility} if utility else {})


def build_sets(records: dict[str, list[Record]], tokenizer, options) -> EvalSets:
    """The items of every set, texts cut into windows with ``tokenizer``."""
    items = {name: make_items(tokenizer, rows, options) for name, rows in records.items()}
    return EvalSets(**items)
