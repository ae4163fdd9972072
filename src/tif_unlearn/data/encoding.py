"""Prompt formatting, label masks and UW/GW token masks from character spans.

A QA record becomes ``prompt + answer + EOS``: the prompt is the tokenizer's chat template
(one user turn, generation prompt added) when it has one, else ``Question: ...\\nAnswer:``.
Labels are -100 on the prompt. A text record is all target.

Token masks come from the tokenizer's offset mapping: an answer token is UW when its
character range overlaps any unwanted span; every other answer token (and the EOS) is GW.
All per-token lists are aligned with ``input_ids`` (position t holds token t).
"""

from __future__ import annotations

import datetime
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import TifError
from ..tokens import IGNORE_INDEX
from .records import QARecord, Record, Span, TextRecord

FALLBACK_TEMPLATE = "Question: {question}\nAnswer:"
# Chat templates that print today's date (Llama 3: ``date_string``, ``strftime_now``) get this
# one, Llama 3.1's own default, so a prompt is the same on the day of training and of evaluation.
PINNED_DATE = datetime.datetime(2024, 7, 26)


@dataclass(frozen=True)
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on the prompt
    uw_mask: list[bool]  # answer tokens overlapping an unwanted span
    gw_mask: list[bool]  # the other answer tokens (EOS included)

    def as_dict(self) -> dict[str, list]:
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "uw_mask": self.uw_mask,
            "gw_mask": self.gw_mask,
        }


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


@contextmanager
def _pinned_clock():
    """Within the block, the chat templates' ``strftime_now`` (transformers reads
    ``datetime.now()`` of its chat-template module) gives :data:`PINNED_DATE`."""
    from transformers.utils import chat_template_utils as templates

    real = getattr(templates, "datetime", None)
    if not (isinstance(real, type) and issubclass(real, datetime.datetime)):
        yield  # another transformers layout: date_string alone pins Llama 3's templates
        return

    class PinnedClock(real):
        @classmethod
        def now(cls, tz=None):
            return PINNED_DATE

    templates.datetime = PinnedClock
    try:
        yield
    finally:
        templates.datetime = real


def render_chat(tokenizer, messages: list[dict]) -> str:
    """``messages`` through the chat template, with the generation prompt, as text; any date
    the template prints (``date_string`` or ``strftime_now``) is :data:`PINNED_DATE`."""
    with _pinned_clock():
        return tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=True,
            tokenize=False,
            date_string=PINNED_DATE.strftime("%d %b %Y"),
        )


def format_prompt(tokenizer, question: str) -> tuple[str, str]:
    """Return ``(prompt_text, answer_prefix)``: the answer is appended as prefix + answer."""
    if has_chat_template(tokenizer):
        return render_chat(tokenizer, [{"role": "user", "content": question}]), ""
    return FALLBACK_TEMPLATE.format(question=question), " "


def _tokenize_with_offsets(tokenizer, text: str, add_special_tokens: bool):
    if not getattr(tokenizer, "is_fast", False):
        raise TifError("a fast tokenizer (with offset mapping) is required to map spans to tokens")
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def _overlaps(start: int, end: int, spans: tuple[Span, ...]) -> bool:
    return any(start < b and a < end for a, b in spans)


def encode_record(tokenizer, record: Record, *, max_length: int = 512) -> EncodedExample:
    """Tokenize one record into ids, labels and UW/GW masks (see module docstring)."""
    if isinstance(record, QARecord):
        prompt, prefix = format_prompt(tokenizer, record.question)
        add_special = not has_chat_template(tokenizer)
        append_eos = True
    elif isinstance(record, TextRecord):
        prompt, prefix, add_special, append_eos = "", "", True, False
    else:  # pragma: no cover - guarded by the loaders
        raise TypeError(f"unsupported record type {type(record).__name__}")
    target_start = len(prompt) + len(prefix)
    ids, offsets = _tokenize_with_offsets(tokenizer, prompt + prefix + record.target, add_special)
    spans = record.unwanted_spans or ()
    labels, uw = [], []
    for token_id, (start, end) in zip(ids, offsets, strict=True):
        is_target = end > target_start and end > start
        labels.append(token_id if is_target else IGNORE_INDEX)
        uw.append(is_target and _overlaps(start - target_start, end - target_start, spans))
    if append_eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
        labels.append(tokenizer.eos_token_id)
        uw.append(False)
    ids, labels, uw = ids[:max_length], labels[:max_length], uw[:max_length]
    gw = [label != IGNORE_INDEX and not u for label, u in zip(labels, uw, strict=True)]
    return EncodedExample(ids, labels, uw, gw)


def encode_answer_only(tokenizer, question: str, answer: str, *, max_length: int = 512):
    """Encode a QA pair without annotation (all answer tokens GW)."""
    return encode_record(tokenizer, QARecord(question, answer), max_length=max_length)
