"""The one place that runs the model for evaluation: batched scoring and batched generation.

``score_answers`` runs one batched forward pass per list of (question, answer) pairs and keeps,
per item, what every loss-based metric needs (token log-probs, argmax predictions), so
probability, truth ratio, Min-K%, zlib and extraction strength all come from the same logits.
``generate`` does left-padded batched greedy decoding with the KV cache, stopping at EOS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .. import losses
from ..data.batches import pad_stream
from ..data.encoding import encode_record, format_prompt
from ..data.records import QARecord, TextRecord


@dataclass(frozen=True)
class ScoredAnswer:
    token_logps: list[float]  # log p of each answer token (EOS included for QA)
    pred_ids: list[int]  # teacher-forced argmax prediction at each answer position
    label_ids: list[int]  # the answer tokens

    @property
    def n_tokens(self) -> int:
        return len(self.token_logps)

    @property
    def total_nll(self) -> float:
        return -sum(self.token_logps)

    @property
    def avg_nll(self) -> float:
        return self.total_nll / max(self.n_tokens, 1)


def _model_device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def _score_batch(model, examples: Sequence[dict], pad_token_id: int) -> list[ScoredAnswer]:
    batch = pad_stream(examples, pad_token_id)
    device = _model_device(model)
    out = model(
        input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
    )
    logits, labels = losses.shift_for_next_token(out.logits, batch["labels"].to(device))
    token_logps = losses.token_logprobs(logits, labels).cpu()  # (B, T-1)
    preds = logits.argmax(-1).cpu()  # (B, T-1)
    labels = labels.cpu()
    scored = []
    for row in range(labels.shape[0]):
        keep = labels[row] != losses.IGNORE_INDEX
        scored.append(
            ScoredAnswer(
                token_logps[row][keep].tolist(),
                preds[row][keep].tolist(),
                labels[row][keep].tolist(),
            )
        )
    return scored


def score_records(
    model,
    tokenizer,
    records: Sequence[QARecord | TextRecord],
    *,
    batch_size: int = 16,
    max_length: int = 512,
    desc: str = "scoring",
) -> list[ScoredAnswer]:
    """Score the answer (or text) tokens of every record; batches are sorted by length."""
    examples = [encode_record(tokenizer, r, max_length=max_length).as_dict() for r in records]
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    results: list[ScoredAnswer | None] = [None] * len(examples)
    was_training = model.training
    model.eval()
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
        indices = order[start : start + batch_size]
        for index, scored in zip(
            indices,
            _score_batch(model, [examples[i] for i in indices], tokenizer.pad_token_id),
            strict=True,
        ):
            results[index] = scored
    model.train(was_training)
    return results  # type: ignore[return-value]


def score_answers(
    model, tokenizer, pairs: Sequence[tuple[str, str]], **kwargs
) -> list[ScoredAnswer]:
    return score_records(model, tokenizer, [QARecord(q, a) for q, a in pairs], **kwargs)


def chat_prompt(tokenizer, question: str) -> str:
    prompt, prefix = format_prompt(tokenizer, question)
    return prompt + prefix.rstrip(" ")


@torch.no_grad()
def _generate_batch(
    model, tokenizer, prompts: Sequence[str], max_new_tokens: int, add_special, max_prompt_tokens
):
    device = _model_device(model)
    truncate = {"truncation": True, "max_length": max_prompt_tokens} if max_prompt_tokens else {}
    enc = tokenizer(
        list(prompts), return_tensors="pt", padding=True, add_special_tokens=add_special, **truncate
    )
    out = model.generate(
        input_ids=enc["input_ids"].to(device),
        attention_mask=enc["attention_mask"].to(device),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        use_cache=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    new_tokens = out[:, enc["input_ids"].shape[1] :]
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in new_tokens]


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    raw_prompts: bool = False,
    max_prompt_tokens: int | None = None,
    desc: str = "generating",
) -> list[str]:
    """Greedy continuations of ``prompts`` (questions, formatted with the chat template, unless
    ``raw_prompts``), left-padded in length-sorted batches with the KV cache. Prompts longer
    than ``max_prompt_tokens`` keep their last tokens."""
    texts = list(prompts) if raw_prompts else [chat_prompt(tokenizer, q) for q in prompts]
    add_special = raw_prompts or not getattr(tokenizer, "chat_template", None)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[str] = [""] * len(texts)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    truncation_side, tokenizer.truncation_side = tokenizer.truncation_side, "left"
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
            indices = order[start : start + batch_size]
            batch = [texts[i] for i in indices]
            for index, text in zip(
                indices,
                _generate_batch(
                    model, tokenizer, batch, max_new_tokens, add_special, max_prompt_tokens
                ),
                strict=True,
            ):
                outputs[index] = text
    finally:
        tokenizer.padding_side = side
        tokenizer.truncation_side = truncation_side
        model.train(was_training)
    return outputs
