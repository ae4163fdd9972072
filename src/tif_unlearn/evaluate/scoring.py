"""Batched scoring of answers for evaluation: one forward pass per batch keeps, per item, what
every loss-based metric needs (token log-probs, argmax predictions), so probability, truth ratio,
Min-K%, zlib and extraction strength all come from the same logits. Answers that share a prompt
(the answer variants of one TOFU question) are scored over one pass of that prompt.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .. import tokens
from ..data.batches import pad_stream
from ..data.encoding import encode_record
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


def model_device(model) -> torch.device:
    return next(model.parameters()).device


POSITIONS_PER_BLOCK = 4  # float32 logits of 4 positions: 0.8 MB for a 49k vocabulary


def scored_token_stats(logits: torch.Tensor, labels: torch.Tensor):
    """log p(label) and the argmax prediction at every scored position (label not
    ``IGNORE_INDEX``), row-major: two (N,) CPU tensors. Inputs already shifted: logits (B, T, V),
    labels (B, T). Done in float32 a few positions at a time: a block stays in cache for its
    passes (max and argmax in one, exp-sum, gather), half-precision logits are never copied
    whole to float32, and padding and prompt positions cost nothing. Equal to
    ``tokens.token_logprobs`` and ``argmax``; in bfloat16 a batch's tail took less than half
    their time (benchmarks/results/bf16_profile.json)."""
    rows, cols = (labels != tokens.IGNORE_INDEX).nonzero(as_tuple=True)  # (N,) each
    logps = torch.empty(len(rows), device=logits.device)
    preds = torch.empty(len(rows), dtype=torch.long, device=logits.device)
    for start in range(0, len(rows), POSITIONS_PER_BLOCK):
        part = slice(start, start + POSITIONS_PER_BLOCK)
        block = logits[rows[part], cols[part]].float()  # (n, V), a copy
        top, preds[part] = block.max(-1)
        log_sum = (block - top[:, None]).exp_().sum(-1).log_()
        picked = block.gather(-1, labels[rows[part], cols[part], None])[:, 0]
        logps[part] = picked - top - log_sum
    return logps.cpu(), preds.cpu()


def _per_row(values: torch.Tensor, counts: list[int]) -> list[list]:
    return [part.tolist() for part in values.split(counts)]


@torch.no_grad()
def _score_batch(model, examples: Sequence[dict], pad_token_id: int) -> list[ScoredAnswer]:
    batch = pad_stream(examples, pad_token_id)
    device = model_device(model)
    labels = batch["labels"]
    out = model(
        input_ids=batch["input_ids"].to(device),
        attention_mask=batch["attention_mask"].to(device),
        **_answer_logits_only(model, labels),
    )
    labels = labels[:, labels.shape[1] - out.logits.shape[1] :]  # the positions kept
    logits, labels = tokens.shift_for_next_token(out.logits, labels.to(device))
    token_logps, preds = scored_token_stats(logits, labels)  # (N,) each
    keep = labels != tokens.IGNORE_INDEX  # (B, T-1)
    counts = keep.sum(1).tolist()
    parts = (_per_row(token_logps, counts), _per_row(preds, counts))
    label_ids = _per_row(labels[keep].cpu(), counts)
    return [ScoredAnswer(lp, pr, ids) for lp, pr, ids in zip(*parts, label_ids, strict=True)]


def answer_start(example: dict) -> int | None:
    """Index of the first answer token when the example is prompt tokens then answer tokens
    only (every later token is scored), else None."""
    labels = example["labels"]
    start = next((i for i, label in enumerate(labels) if label != tokens.IGNORE_INDEX), None)
    if not start or any(label == tokens.IGNORE_INDEX for label in labels[start:]):
        return None
    return start


def shared_prompt_groups(examples: Sequence[dict]) -> list[list[int]]:
    """Indices of examples that share their whole prompt (the answer variants of one TOFU
    question), in groups of two or more."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, example in enumerate(examples):
        start = answer_start(example)
        if start is not None:
            groups.setdefault(tuple(example["input_ids"][:start]), []).append(index)
    return [indices for indices in groups.values() if len(indices) > 1]


@functools.cache
def _forward_parameters(model_type: type) -> frozenset[str]:
    return frozenset(inspect.signature(model_type.forward).parameters)


def forward_takes(model, name: str) -> bool:
    """Whether the model's ``forward`` has the argument ``name`` (looked up once per class)."""
    return name in _forward_parameters(type(model))


def cache_argument_name(model) -> str:
    """The forward argument that takes a KV cache: ``cache`` (transformers >= 5.24) or
    ``past_key_values`` (earlier)."""
    return "cache" if forward_takes(model, "cache") else "past_key_values"


def last_logits_only(model) -> dict:
    """``logits_to_keep=1`` where the model takes it: a prompt pass that only needs the next
    token's logits skips a vocabulary-wide projection per prompt token."""
    return {"logits_to_keep": 1} if forward_takes(model, "logits_to_keep") else {}


def returned_cache(out):
    """The KV cache a forward pass returned: ``cache`` (transformers >= 5.24) or
    ``past_key_values`` (earlier)."""
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def _answer_logits_only(model, labels: torch.Tensor) -> dict:
    """``logits_to_keep`` that drops the positions before the batch's first scored token,
    where the model takes it: a prompt position's vocabulary-wide logits are never read
    (SmolLM2: 0.2 MB a position in float32, so most of a batch's peak memory)."""
    if not forward_takes(model, "logits_to_keep"):
        return {}
    scored = (labels != tokens.IGNORE_INDEX).any(dim=0).nonzero()
    first = int(scored[0]) if len(scored) else labels.shape[1] - 1
    return {"logits_to_keep": labels.shape[1] - max(first - 1, 0)}


def _answers_after_prompt(answers: Sequence[list[int]], start: int, pad_token_id: int):
    """Model inputs of the batched pass over the answers that follows a cached prompt of
    ``start`` tokens (each answer but its last token, right-padded), and the labels (each
    answer but its first token)."""
    n, width = len(answers), max(len(a) for a in answers) - 1
    inputs = torch.full((n, width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), tokens.IGNORE_INDEX, dtype=torch.long)
    for row, answer in enumerate(answers):
        inputs[row, : len(answer) - 1] = torch.tensor(answer[:-1])
        mask[row, : len(answer) - 1] = 1
        labels[row, : len(answer) - 1] = torch.tensor(answer[1:])
    return {
        "input_ids": inputs,
        "attention_mask": torch.cat([torch.ones((n, start), dtype=torch.long), mask], dim=1),
        "position_ids": (start + torch.arange(width)).expand(n, -1),
    }, labels


def _score_answer_rest(model, answers, start: int, cache, pad_token_id: int):
    """(log p, argmax prediction) lists of every answer token after the first: one batched pass
    over the answers, with the prompt's KV cache repeated per answer."""
    device = model_device(model)
    cache.batch_repeat_interleave(len(answers))
    inputs, labels = _answers_after_prompt(answers, start, pad_token_id)
    moved = {key: value.to(device) for key, value in inputs.items()}
    logits = model(**moved, **{cache_argument_name(model): cache}).logits
    logps, preds = scored_token_stats(logits, labels.to(device))  # (N,) each, row-major
    counts = [len(a) - 1 for a in answers]
    return list(zip(_per_row(logps, counts), _per_row(preds, counts), strict=True))


@torch.no_grad()
def _score_shared_prompt(model, examples: Sequence[dict], pad_token_id: int) -> list[ScoredAnswer]:
    """Score several answers to one prompt: one forward pass over the prompt, whose KV cache is
    then repeated for a batched pass over the answers (right-padded after the prompt)."""
    start = answer_start(examples[0])
    prompt = torch.tensor([examples[0]["input_ids"][:start]], device=model_device(model))
    answers = [e["input_ids"][start:] for e in examples]
    out = model(input_ids=prompt, use_cache=True, **last_logits_only(model))
    cache = returned_cache(out)
    first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # predicts each answer[0]
    logps = [[first[a[0]].item()] for a in answers]
    preds = [[int(first.argmax())] for _ in answers]
    if max(len(a) for a in answers) > 1:
        rest = _score_answer_rest(model, answers, start, cache, pad_token_id)
        for row, (rest_logps, rest_preds) in enumerate(rest):
            logps[row] += rest_logps
            preds[row] += rest_preds
    return [ScoredAnswer(lp, pr, list(a)) for lp, pr, a in zip(logps, preds, answers, strict=True)]


def _packed(indices: Sequence[int], lengths: Sequence[int], batch_size: int, batch_tokens: int):
    """Consecutive runs of ``indices`` (sorted by length) of at most ``batch_size`` rows whose
    padded size (rows x longest) stays within ``batch_tokens``; a longer row goes alone."""
    batches: list[list[int]] = []
    for index in indices:
        current = batches[-1] if batches else None
        if current and len(current) < batch_size:
            longest = max(lengths[index], *(lengths[i] for i in current))
            if (len(current) + 1) * longest <= batch_tokens:
                current.append(index)
                continue
        batches.append([index])
    return batches


def _scoring_batches(examples: Sequence[dict], batch_size: int, share_prompts: bool, batch_tokens):
    """("shared", indices) batches of answers to one prompt, then ("plain", indices) batches
    of the other examples sorted by length, each packed to ``batch_tokens`` padded tokens."""
    lengths = [len(e["input_ids"]) for e in examples]
    budget = batch_tokens or batch_size * max(lengths, default=1)
    groups = shared_prompt_groups(examples) if share_prompts and batch_size > 1 else []
    grouped = {i for group in groups for i in group}
    batches = [
        ("shared", batch)
        for group in groups
        for batch in _packed(sorted(group, key=lengths.__getitem__), lengths, batch_size, budget)
    ]
    rest = sorted((i for i in range(len(examples)) if i not in grouped), key=lengths.__getitem__)
    batches += [("plain", batch) for batch in _packed(rest, lengths, batch_size, budget)]
    return batches


def score_records(
    model,
    tokenizer,
    records: Sequence[QARecord | TextRecord],
    *,
    batch_size: int = 16,
    max_length: int = 512,
    share_prompts: bool = True,
    batch_tokens: int | None = 4096,
    desc: str = "scoring",
) -> list[ScoredAnswer]:
    """Score the answer (or text) tokens of every record. Answers to the same prompt are
    scored together over one pass of the prompt (``share_prompts``, batch size > 1); the rest
    go in length-sorted batches. A batch holds at most ``batch_size`` rows and, with
    ``batch_tokens``, at most that many padded tokens (a longer record goes alone): the
    logits, a vocabulary-wide row per token, are most of its memory."""
    examples = [encode_record(tokenizer, r, max_length=max_length).as_dict() for r in records]
    results: list[ScoredAnswer | None] = [None] * len(examples)
    was_training = model.training
    model.eval()
    batches = _scoring_batches(examples, batch_size, share_prompts, batch_tokens)
    for kind, indices in tqdm(batches, desc=desc, leave=False):
        score = _score_shared_prompt if kind == "shared" else _score_batch
        scored = score(model, [examples[i] for i in indices], tokenizer.pad_token_id)
        for index, value in zip(indices, scored, strict=True):
            results[index] = value
    model.train(was_training)
    return results  # type: ignore[return-value]


def score_answers(
    model, tokenizer, pairs: Sequence[tuple[str, str]], **kwargs
) -> list[ScoredAnswer]:
    return score_records(model, tokenizer, [QARecord(q, a) for q, a in pairs], **kwargs)
