"""The ``masked-lm`` identifier (TIF paper, second identifier): a word the model can guess
from its context is general; a word it cannot guess carries specific knowledge.

For each word of the target (``WORD_PATTERN``), the question and answer are joined
(``question + " " + answer``; a text record is its text alone) and every sub-token of that
word is replaced by the mask token: one mask per sub-token, so a word of k sub-tokens becomes
k masks. The word is GW when the top-1 predictions at those positions, decoded together,
equal the word (case-insensitive, stripped), else UW. Masking all sub-tokens at once means the
model never sees part of the word, at the cost of revealing its length in sub-tokens.

Any Hugging Face fill-mask model works (``AutoModelForMaskedLM`` with a fast tokenizer); pass
a folder / hub id, or ``model=`` and ``tokenizer=`` objects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from ..data.records import Record
from ..errors import TifError
from .base import Failed, IdentifyResult, SampleResult, question_of, run_batched, words

DEFAULT_MASKED_LM = "bert-base-uncased"


def is_general_word(word: str, predicted: str) -> bool:
    """The paper's rule: GW when the model's top-1 guess equals the word, ignoring case."""
    return predicted.strip().lower() == word.strip().lower()


def load_masked_lm(spec: str):
    """``(model, tokenizer)`` of a fill-mask model folder or hub id; TifError if unusable."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(spec)
        model = AutoModelForMaskedLM.from_pretrained(spec)
    except (OSError, ValueError) as err:
        raise TifError(
            f"could not load the masked LM {spec!r}: {str(err).splitlines()[0]}"
        ) from err
    return model, tokenizer


def _check_tokenizer(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False) or tokenizer.mask_token_id is None:
        raise TifError("the masked-lm identifier needs a fast tokenizer with a mask token")


def _joined(record: Record) -> tuple[str, int]:
    """The text the model sees and the offset of the target inside it."""
    question = question_of(record)
    return (f"{question} {record.target}", len(question) + 1) if question else (record.target, 0)


def _word_queries(tokenizer, record: Record, max_length: int):
    """``(ids, [(word_span, token_positions)])`` for the target's words, or Failed."""
    text, shift = _joined(record)
    enc = tokenizer(text, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    if len(ids) > max_length:
        return Failed(f"too long for the masked LM: {len(ids)} tokens > {max_length}")
    queries = []
    for start, end in words(record.target):
        a, b = start + shift, end + shift
        positions = [t for t, (s, e) in enumerate(offsets) if e > s and s < b and a < e]
        queries.append(((start, end), positions))
    return ids, queries


def _predict(model, tokenizer, masked: list[tuple[list[int], list[int]]], batch_size: int):
    """Top-1 predicted token ids at the masked positions of each sequence."""
    device = next(model.parameters()).device
    out: list[list[int]] = []
    for offset in range(0, len(masked), batch_size):
        chunk = masked[offset : offset + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in chunk])  # (B, T)
        attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk])
        with torch.inference_mode():
            logits = model(
                input_ids=input_ids.to(device), attention_mask=attention.to(device)
            ).logits
        top1 = logits.argmax(dim=-1).cpu()  # (B, T)
        out.extend(top1[row, positions].tolist() for row, (_, positions) in enumerate(chunk))
    return out


def _masked_copy(ids: list[int], positions: list[int], mask_id: int) -> list[int]:
    masked = list(ids)
    for t in positions:
        masked[t] = mask_id
    return masked


def _batch_spans(model, tokenizer, batch: list[Record], *, max_length: int, batch_size: int):
    """UW word spans for each record of ``batch`` (or Failed)."""
    prepared = [_word_queries(tokenizer, record, max_length) for record in batch]
    masked, owners = [], []
    for i, prep in enumerate(prepared):
        if isinstance(prep, Failed):
            continue
        ids, queries = prep
        for q, (_, positions) in enumerate(queries):
            if positions:
                masked.append((_masked_copy(ids, positions, tokenizer.mask_token_id), positions))
                owners.append((i, q))
    predictions = _predict(model, tokenizer, masked, batch_size)
    guessed = {
        owner: tokenizer.decode(pred, skip_special_tokens=True)
        for owner, pred in zip(owners, predictions, strict=True)
    }
    results: list[SampleResult] = []
    for i, prep in enumerate(prepared):
        if isinstance(prep, Failed):
            results.append(prep)
            continue
        target = batch[i].target
        results.append(
            [
                span
                for q, (span, _) in enumerate(prep[1])
                if not is_general_word(target[span[0] : span[1]], guessed.get((i, q), ""))
            ]
        )
    return results


def identify_masked_lm(
    records: Sequence[Record],
    *,
    model_name: str = DEFAULT_MASKED_LM,
    model=None,
    tokenizer=None,
    batch_size: int = 32,
    samples_per_batch: int = 8,
    max_length: int = 512,
    progress: bool = True,
) -> IdentifyResult:
    """Mark as UW every target word that the fill-mask model does not guess back (top-1).

    ``model_name``: folder or hub id (ignored when ``model`` and ``tokenizer`` are given);
    ``batch_size``: masked sequences per forward pass; ``samples_per_batch``: records whose
    words are masked together; ``max_length``: longer inputs are failures.
    """
    started = time.perf_counter()
    if model is None or tokenizer is None:
        model, tokenizer = load_masked_lm(model_name)
    _check_tokenizer(tokenizer)
    model.eval()

    def batch_fn(batch: list[Record]) -> list[SampleResult]:
        return _batch_spans(model, tokenizer, batch, max_length=max_length, batch_size=batch_size)

    return run_batched(
        records,
        batch_fn,
        batch_size=samples_per_batch,
        desc="masked-lm",
        progress=progress,
        started=started,
    )
