"""Hidden-state features of a small causal LM for the ``learned`` identifier.

Each record is encoded as ``Question: {question}\nAnswer: {answer}`` (a text record: the text
alone; no chat template: the system prompt of SmolLM2's would add a third of the tokens, and
scored no better in cross-validation) and run once through the LM, stopping after the
deepest layer asked for (the layers above it and the LM head are never run). The hidden states
of the answer's tokens at the given layers (``layers=[10]``: the output of decoder layer 10,
``hidden_states[10]`` of Hugging Face) are concatenated and averaged over the LM tokens that
overlap each word unit (a spaCy token) of the answer: one dense row per unit.

A linear probe over such states scores tokens in arXiv 2606.06320; here the rows join the sparse
features of the logistic regression (:mod:`.learned_fit`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from ..data.batches import pad_stream
from ..data.encoding import FALLBACK_TEMPLATE
from ..data.records import Record, Span
from ..errors import TifError
from .base import question_of

DEFAULT_LM = "smollm2-135m"


@functools.lru_cache(maxsize=2)
def load_feature_lm(spec: str):
    """``(model, tokenizer)`` of ``spec`` for :func:`tif_unlearn.models.load_model`, in eval
    mode on the CPU, loaded once per process; any failure is one-line :class:`TifError`."""
    from ..models import load_model

    try:
        model, tokenizer = load_model(spec)
    except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TifError(f"the learned model needs the language model {spec!r}: {reason}") from None
    return model.eval(), tokenizer


class _Stop(Exception):
    """Raised by the hook of the deepest layer needed: the rest of the LM is not run."""


def _decoder_layers(model):
    layers = getattr(getattr(model, "model", model), "layers", None)
    if layers is None:
        raise TifError(f"{type(model).__name__}: no decoder layers (model.model.layers) found")
    return layers


def _run_to_layers(model, input_ids, attention, layers: Sequence[int]) -> torch.Tensor:
    """Outputs of the given decoder layers (1-based), concatenated: (B, T, len(layers) * H)."""
    decoder, found = _decoder_layers(model), {}
    if not all(1 <= n <= len(decoder) for n in layers):
        raise TifError(f"layers {list(layers)} outside 1..{len(decoder)} of the LM")
    deepest = max(layers)

    def hook(number):
        def capture(module, args, output):
            found[number] = output[0] if isinstance(output, tuple) else output
            if number == deepest:
                raise _Stop

        return capture

    handles = [decoder[n - 1].register_forward_hook(hook(n)) for n in set(layers)]
    try:
        with torch.inference_mode():
            model(input_ids=input_ids, attention_mask=attention)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat([found[n].float() for n in layers], dim=-1)


def _answer_tokens(tokenizer, record: Record, max_length: int):
    """Ids of prompt + answer (cut to ``max_length``), the positions of the answer's tokens and
    their spans in the answer."""
    question = question_of(record)
    prompt = FALLBACK_TEMPLATE.format(question=question) + " " if question else ""
    encoded = tokenizer(prompt + record.target, return_offsets_mapping=True)
    offsets = [(s - len(prompt), e - len(prompt)) for s, e in encoded["offset_mapping"]]
    ids = list(encoded["input_ids"])[:max_length]
    answer = [t for t, (s, e) in enumerate(offsets[: len(ids)]) if e > max(s, 0)]
    return ids, answer, [tuple(offsets[t]) for t in answer]


def answer_states(
    records: Sequence[Record],
    model,
    tokenizer,
    layers: Sequence[int],
    *,
    batch_size: int = 16,
    max_length: int = 512,
) -> list[tuple[list[Span], np.ndarray]]:
    """Per record: the answer's LM token spans (offsets into the answer) and their hidden
    states at ``layers``, float32 (n_tokens, len(layers) * hidden)."""
    encoded = [_answer_tokens(tokenizer, r, max_length) for r in records]
    out: list[tuple[list[Span], np.ndarray]] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for start in range(0, len(records), batch_size):
        batch = encoded[start : start + batch_size]
        padded = pad_stream([{"input_ids": ids} for ids, _, _ in batch], pad)  # right-padded
        ids, attention = padded["input_ids"], padded["attention_mask"]
        states = _run_to_layers(model, ids, attention, layers).numpy()  # (B, T, D)
        out += [(spans, states[row, answer]) for row, (_, answer, spans) in enumerate(batch)]
    return out


def pool_states(units: Sequence[Span], token_spans: Sequence[Span], states: np.ndarray):
    """Mean hidden state of the LM tokens overlapping each unit span (zeros when none):
    (len(units), D)."""
    pooled = np.zeros((len(units), states.shape[1]), dtype=np.float32)
    for row, (a, b) in enumerate(units):
        inside = [k for k, (s, e) in enumerate(token_spans) if s < b and a < e]
        if inside:
            pooled[row] = states[inside].mean(axis=0)
    return pooled


def with_next(states: np.ndarray) -> np.ndarray:
    """Each row followed by the next row (zeros after the last): (n, D) -> (n, 2D). A causal
    LM's state of a word has not seen the words after it ("Paris" in "Paris Review")."""
    following = np.zeros_like(states)
    following[:-1] = states[1:]
    return np.concatenate([states, following], axis=1)
