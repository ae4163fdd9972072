"""The one place that runs the model for evaluation: batched scoring and batched generation.

``score_answers`` runs one batched forward pass per list of (question, answer) pairs and keeps,
per item, what every loss-based metric needs (token log-probs, argmax predictions), so
probability, truth ratio, Min-K%, zlib and extraction strength all come from the same logits.
``generate`` does left-padded batched greedy decoding with the KV cache, stopping at EOS.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .. import tokens
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
    logits, labels = tokens.shift_for_next_token(out.logits, batch["labels"].to(device))
    token_logps = tokens.token_logprobs(logits, labels).cpu()  # (B, T-1)
    preds = logits.argmax(-1).cpu()  # (B, T-1)
    labels = labels.cpu()
    scored = []
    for row in range(labels.shape[0]):
        keep = labels[row] != tokens.IGNORE_INDEX
        scored.append(
            ScoredAnswer(
                token_logps[row][keep].tolist(),
                preds[row][keep].tolist(),
                labels[row][keep].tolist(),
            )
        )
    return scored


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


def _cache_argument(model) -> str:
    """The forward argument that takes a KV cache: ``cache`` (transformers >= 5.24) or
    ``past_key_values`` (earlier)."""
    parameters = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


@torch.no_grad()
def _score_shared_prompt(model, examples: Sequence[dict], pad_token_id: int) -> list[ScoredAnswer]:
    """Score several answers to one prompt: one forward pass over the prompt, whose KV cache is
    then repeated for a batched pass over the answers (right-padded after the prompt)."""
    device = _model_device(model)
    start = answer_start(examples[0])
    prompt = torch.tensor([examples[0]["input_ids"][:start]], device=device)
    answers = [e["input_ids"][start:] for e in examples]
    out = model(input_ids=prompt, use_cache=True)
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)  # predicts each answer[0]
    logps = [[first[a[0]].item()] for a in answers]
    preds = [[int(first.argmax())] for _ in answers]
    width = max(len(a) for a in answers) - 1
    if width > 0:
        n = len(answers)
        cache.batch_repeat_interleave(n)
        inputs = torch.full((n, width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for row, answer in enumerate(answers):
            inputs[row, : len(answer) - 1] = torch.tensor(answer[:-1])
            mask[row, : len(answer) - 1] = 1
        attention = torch.cat([torch.ones((n, start), dtype=torch.long), mask], dim=1)
        positions = (start + torch.arange(width)).expand(n, -1)
        logits = model(
            input_ids=inputs.to(device),
            attention_mask=attention.to(device),
            position_ids=positions.to(device),
            **{_cache_argument(model): cache},
        ).logits
        labels = torch.full((n, width), tokens.IGNORE_INDEX, dtype=torch.long)
        for row, answer in enumerate(answers):
            labels[row, : len(answer) - 1] = torch.tensor(answer[1:])
        rest = tokens.token_logprobs(logits, labels.to(device)).cpu()
        rest_preds = logits.argmax(-1).cpu()
        for row, answer in enumerate(answers):
            logps[row] += rest[row, : len(answer) - 1].tolist()
            preds[row] += rest_preds[row, : len(answer) - 1].tolist()
    return [ScoredAnswer(lp, pr, list(a)) for lp, pr, a in zip(logps, preds, answers, strict=True)]


def _scoring_batches(examples: Sequence[dict], batch_size: int, share_prompts: bool):
    """("shared", indices) batches of answers to one prompt, then ("plain", indices) batches
    of the other examples sorted by length."""
    groups = shared_prompt_groups(examples) if share_prompts and batch_size > 1 else []
    grouped = {i for group in groups for i in group}
    batches = [
        ("shared", group[start : start + batch_size])
        for group in groups
        for start in range(0, len(group), batch_size)
    ]
    rest = sorted(
        (i for i in range(len(examples)) if i not in grouped),
        key=lambda i: len(examples[i]["input_ids"]),
    )
    batches += [
        ("plain", rest[start : start + batch_size]) for start in range(0, len(rest), batch_size)
    ]
    return batches


def score_records(
    model,
    tokenizer,
    records: Sequence[QARecord | TextRecord],
    *,
    batch_size: int = 16,
    max_length: int = 512,
    share_prompts: bool = True,
    desc: str = "scoring",
) -> list[ScoredAnswer]:
    """Score the answer (or text) tokens of every record. Answers to the same prompt are
    scored together over one pass of the prompt (``share_prompts``, batch size > 1); the rest
    go in length-sorted batches."""
    examples = [encode_record(tokenizer, r, max_length=max_length).as_dict() for r in records]
    results: list[ScoredAnswer | None] = [None] * len(examples)
    was_training = model.training
    model.eval()
    batches = _scoring_batches(examples, batch_size, share_prompts)
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


def chat_prompt(tokenizer, question: str) -> str:
    prompt, prefix = format_prompt(tokenizer, question)
    return prompt + prefix.rstrip(" ")


def stop_token_ids(model, tokenizer) -> list[int]:
    """Every token that ends an answer: the tokenizer's EOS and the model's own list
    (``generation_config.eos_token_id``: Llama-3 ends a turn with ``<|eot_id|>``, not EOS)."""
    ids = [tokenizer.eos_token_id]
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids += configured if isinstance(configured, list | tuple) else [configured]
    return list(dict.fromkeys(i for i in ids if i is not None))


@torch.no_grad()
def _generate_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    add_special,
    max_prompt_tokens,
    decoding: dict | None = None,
):
    """Continuations of ``prompts``, ``num_return_sequences`` (default 1) rows per prompt in
    prompt order; greedy unless ``decoding`` says otherwise."""
    device = _model_device(model)
    truncate = {"truncation": True, "max_length": max_prompt_tokens} if max_prompt_tokens else {}
    enc = tokenizer(
        list(prompts), return_tensors="pt", padding=True, add_special_tokens=add_special, **truncate
    )
    out = model.generate(
        input_ids=enc["input_ids"].to(device),
        attention_mask=enc["attention_mask"].to(device),
        max_new_tokens=max_new_tokens,
        num_beams=1,
        use_cache=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stop_token_ids(model, tokenizer),
        **(decoding or {"do_sample": False}),
    )
    new_tokens = out[:, enc["input_ids"].shape[1] :]
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in new_tokens]


def _generate_groups(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    add_special: bool,
    batch_size: int,
    desc: str,
    n: int = 1,
    decoding: dict | None = None,
    **batch_options,
) -> list[list[str]]:
    """``n`` continuations per text (``batch_size`` rows per batch, left-padded, texts sorted
    by length), returned in the order of ``texts``."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[list[str]] = [[] for _ in texts]
    per_batch = max(1, batch_size // n)
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    truncation_side, tokenizer.truncation_side = tokenizer.truncation_side, "left"
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(order), per_batch), desc=desc, leave=False):
            indices = order[start : start + per_batch]
            rows = _generate_batch(
                model,
                tokenizer,
                [texts[i] for i in indices],
                add_special=add_special,
                decoding=decoding,
                **batch_options,
            )
            for position, index in enumerate(indices):
                outputs[index] = rows[position * n : (position + 1) * n]
    finally:
        tokenizer.padding_side = side
        tokenizer.truncation_side = truncation_side
        model.train(was_training)
    return outputs


def _prompt_texts(tokenizer, prompts, raw_prompts: bool, add_special_tokens: bool | None):
    """The texts to tokenize and whether to add special tokens (see :func:`generate`)."""
    texts = list(prompts) if raw_prompts else [chat_prompt(tokenizer, q) for q in prompts]
    add_special = raw_prompts or not getattr(tokenizer, "chat_template", None)
    return texts, add_special if add_special_tokens is None else add_special_tokens


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    raw_prompts: bool = False,
    max_prompt_tokens: int | None = None,
    add_special_tokens: bool | None = None,
    desc: str = "generating",
) -> list[str]:
    """Greedy continuations of ``prompts`` (questions, formatted with the chat template, unless
    ``raw_prompts``), left-padded in length-sorted batches with the KV cache. Prompts longer
    than ``max_prompt_tokens`` keep their last tokens. Special tokens (BOS) are added to raw
    prompts and to prompts of a tokenizer without chat template, unless ``add_special_tokens``
    says otherwise (pass False for raw prompts already rendered with the chat template)."""
    texts, add_special = _prompt_texts(tokenizer, prompts, raw_prompts, add_special_tokens)
    groups = _generate_groups(
        model,
        tokenizer,
        texts,
        add_special=add_special,
        batch_size=batch_size,
        desc=desc,
        max_new_tokens=max_new_tokens,
        max_prompt_tokens=max_prompt_tokens,
    )
    return [group[0] for group in groups]


def sample(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    n: int,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 64,
    batch_size: int = 32,
    raw_prompts: bool = False,
    add_special_tokens: bool | None = None,
    desc: str = "sampling",
) -> list[list[str]]:
    """``n`` sampled continuations per prompt (pure sampling at ``temperature``: no top-k or
    top-p cut), prompts handled as in :func:`generate`. Seeded: the same call gives the same
    texts; the global random state is left as it was."""
    texts, add_special = _prompt_texts(tokenizer, prompts, raw_prompts, add_special_tokens)
    decoding = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
    with torch.random.fork_rng(devices=[] if _model_device(model).type == "cpu" else None):
        torch.manual_seed(seed)
        return _generate_groups(
            model,
            tokenizer,
            texts,
            add_special=add_special,
            batch_size=batch_size,
            desc=desc,
            n=n,
            decoding={**decoding, "num_return_sequences": n},
            max_new_tokens=max_new_tokens,
            max_prompt_tokens=None,
        )
