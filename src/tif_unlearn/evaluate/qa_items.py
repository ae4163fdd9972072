"""`tif eval qa` inputs: options, the input files, and the evaluated items.

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
from ..errors import TifError
from . import leak

log = logging.getLogger("tif_unlearn")


@dataclass
class QAEvalOptions:
    identifier: str = "phrases"  # marks UW in forget records that have no annotation
    leak_samples: int = 8  # N of the best-of-N leak (0: no sampling)
    temperature: float = 1.0
    seed: int = 0
    format_shift: bool = True  # ask each forget question in the other forms too
    batch_size: int = 16
    max_new_tokens: int = 64
    max_length: int = 512  # tokens kept of each scored example
    window_length: int = 128  # tokens per window of a text record
    min_k: float = 0.4
    dtype: str = "float32"  # weights dtype of the evaluated models (the CLI resolves auto)

    def __post_init__(self):
        checks = {
            "--leak-samples must be >= 0": self.leak_samples >= 0,
            "--temperature must be > 0": self.temperature > 0,
            "--batch-size must be >= 1": self.batch_size >= 1,
            "--max-new-tokens must be >= 1": self.max_new_tokens >= 1,
            "--window-length must be >= 2": self.window_length >= 2,
        }
        for message, ok in checks.items():
            if not ok:
                raise TifError(message)
        from ..identify import IDENTIFIERS

        if self.identifier not in IDENTIFIERS:
            names = ", ".join(IDENTIFIERS)
            raise TifError(f"unknown identifier {self.identifier!r}; choose one of: {names}")


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


@dataclass
class QAEvalFiles:
    model: str
    forget: str
    retain: str | None = None
    holdout: str | None = None
    reference: str | None = None


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


def read_records(files: QAEvalFiles, options: QAEvalOptions) -> dict[str, list[Record]]:
    """Every input file's records (forget annotated) before any model is loaded, so bad input
    fails fast."""
    records = {
        name: load_eval_records(getattr(files, name), name)
        for name in ("retain", "holdout")
        if getattr(files, name)
    }
    forget = annotate_missing(load_eval_records(files.forget, "forget"), options.identifier)
    return {"forget": forget} | records


def build_sets(records: dict[str, list[Record]], tokenizer, options) -> EvalSets:
    """The items of every set, texts cut into windows with ``tokenizer``."""
    items = {name: make_items(tokenizer, rows, options) for name, rows in records.items()}
    return EvalSets(**items)
