"""The ``contrast`` identifier: the words the target model learned from the forget data.

The target model (the one to unlearn from) and a reference model (usually the base model it
was fine-tuned from; both causal LMs sharing one tokenizer) score each record, encoded by
:func:`~tif_unlearn.data.encoding.encode_record` (chat-template prompt + answer). For each
target word (``WORD_PATTERN``) the gain is the mean over its tokens of
``log p_target(token) - log p_ref(token)``; the word is UW when the gain exceeds
``threshold`` (default 1.0 nat: the target gives the word's tokens e = 2.7 times the
reference's probability, on geometric average). Tokens map to words by offset overlap.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from ..data.encoding import encode_record, format_prompt, has_chat_template
from ..data.records import QARecord, Record, Span
from ..errors import TifError
from ..tokens import IGNORE_INDEX, shift_for_next_token, token_logprobs
from .base import Failed, IdentifyResult, SampleResult, run_batched, words

DEFAULT_THRESHOLD = 1.0


def _offsets(tokenizer, record: Record) -> tuple[list[int], list[Span]]:
    """Ids and token offsets relative to the target, tokenized exactly as encode_record does."""
    if isinstance(record, QARecord):
        prompt, prefix = format_prompt(tokenizer, record.question)
        add_special = not has_chat_template(tokenizer)
    else:
        prompt, prefix, add_special = "", "", True
    shift = len(prompt) + len(prefix)
    enc = tokenizer(
        prompt + prefix + record.target, add_special_tokens=add_special, return_offsets_mapping=True
    )
    return list(enc["input_ids"]), [(s - shift, e - shift) for s, e in enc["offset_mapping"]]


def _prepare(tokenizer, record: Record, max_length: int):
    """``(input_ids, labels, word_positions)`` of one record, or Failed."""
    example = encode_record(tokenizer, record, max_length=max_length + 1)
    ids, offsets = _offsets(tokenizer, record)
    if len(example.input_ids) > max_length:
        return Failed(f"longer than max_length={max_length} tokens")
    if example.input_ids[: len(ids)] != ids:
        return Failed("tokenization differs from encode_record's")
    word_positions = []
    for start, end in words(record.target):
        positions = [
            t
            for t, (s, e) in enumerate(offsets)
            if t > 0 and example.labels[t] != IGNORE_INDEX and e > s and s < end and start < e
        ]
        word_positions.append(((start, end), positions))
    return example.input_ids, example.labels, word_positions


def _logprobs(model, input_ids, attention, labels) -> torch.Tensor:
    """log p(label) at each shifted position, float32, on CPU: (B, T-1)."""
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
    shifted_logits, shifted_labels = shift_for_next_token(logits, labels.to(device))
    return token_logprobs(shifted_logits, shifted_labels).float().cpu()  # (B, T-1)


def _gains(target, reference, tokenizer, prepared: list[tuple]) -> torch.Tensor:
    """log p_target - log p_ref per shifted position for a batch of prepared records."""
    lengths = torch.tensor([len(ids) for ids, _, _ in prepared])  # (B,)
    width = int(lengths.max())
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _, _ in prepared])
    labels = torch.tensor([lab + [IGNORE_INDEX] * (width - len(lab)) for _, lab, _ in prepared])
    attention = (torch.arange(width)[None, :] < lengths[:, None]).long()  # (B, T)
    target_logps = _logprobs(target, input_ids, attention, labels)  # (B, T-1)
    return target_logps - _logprobs(reference, input_ids, attention, labels)  # (B, T-1)


def _batch_spans(target, reference, tokenizer, batch, *, threshold: float, max_length: int):
    """UW word spans (mean gain over the word's tokens > threshold) per record, or Failed."""
    prepared = [_prepare(tokenizer, record, max_length) for record in batch]
    good = [p for p in prepared if not isinstance(p, Failed)]
    gains = _gains(target, reference, tokenizer, good) if good else None
    results: list[SampleResult] = []
    row = 0
    for prep in prepared:
        if isinstance(prep, Failed):
            results.append(prep)
            continue
        # the token at position t is predicted at shifted position t - 1
        word_gains = [
            (span, gains[row, [t - 1 for t in pos]].mean()) for span, pos in prep[2] if pos
        ]
        results.append([span for span, gain in word_gains if gain.item() > threshold])
        row += 1
    return results


def _resolve(model, tokenizer, what: str, loading: dict):
    """``(model, tokenizer)`` from a spec for ``load_model`` (loaded with ``loading``: device
    and dtype) or from objects."""
    if isinstance(model, str):
        from .loading import load_on_device

        return load_on_device(model, **loading)
    if model is None:
        raise TifError(f"the contrast identifier needs a {what} model")
    return model, tokenizer


def _same_vocab(a, b) -> bool:
    return a is None or b is None or a is b or a.get_vocab() == b.get_vocab()


def _models(target, reference, tokenizer, loading: dict):
    """``(target_model, reference_model, tokenizer)``, in eval mode, sharing one tokenizer."""
    target_model, target_tok = _resolve(target, tokenizer, "target", loading)
    reference_model, reference_tok = _resolve(reference, tokenizer, "reference", loading)
    tokenizer = target_tok or reference_tok
    if tokenizer is None:
        raise TifError("pass tokenizer= when the models are given as objects")
    if not _same_vocab(target_tok, reference_tok):
        raise TifError("the target and reference models must share one tokenizer")
    return target_model.eval(), reference_model.eval(), tokenizer


def identify_contrast(
    records: Sequence[Record],
    *,
    target=None,
    reference=None,
    tokenizer=None,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = 8,
    max_length: int = 512,
    progress: bool = True,
    device: str = "auto",
    dtype: str = "auto",
) -> IdentifyResult:
    """Mark as UW the words whose tokens the target model predicts better than the reference.

    ``target`` / ``reference``: a spec for :func:`tif_unlearn.models.load_model` or a model
    object (then ``tokenizer`` is required); both must share the tokenizer. A spec is loaded
    in ``dtype`` on ``device`` (auto: bfloat16 on a bf16 GPU when one is visible, else float32
    on the CPU); the log-probabilities are compared in float32.
    """
    started = time.perf_counter()
    loading = {"device": device, "dtype": dtype}
    target_model, reference_model, tokenizer = _models(target, reference, tokenizer, loading)

    def batch_fn(batch: list[Record]) -> list[SampleResult]:
        models = (target_model, reference_model, tokenizer)
        return _batch_spans(*models, batch, threshold=threshold, max_length=max_length)

    return run_batched(
        records,
        batch_fn,
        batch_size=batch_size,
        desc="contrast",
        progress=progress,
        started=started,
        by_length=True,
    )
