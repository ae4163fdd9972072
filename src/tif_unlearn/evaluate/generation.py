"""Batched generation for evaluation: left-padded, length-sorted batches with the KV cache,
stopping at EOS (and the model's own end-of-turn tokens); greedy by default, or seeded sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

from ..data.encoding import format_prompt
from .greedy import greedy_token_ids, plain_greedy_config
from .scoring import cache_argument_name, model_device


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
    device = model_device(model)
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


@contextmanager
def _left_padded_eval(model, tokenizer):
    """Left padding and truncation and eval mode inside the block; the previous settings after."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    truncation_side, tokenizer.truncation_side = tokenizer.truncation_side, "left"
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        tokenizer.padding_side = side
        tokenizer.truncation_side = truncation_side
        model.train(was_training)


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
    with _left_padded_eval(model, tokenizer):
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
    early_exit: bool = True,
) -> list[str]:
    """Greedy continuations of ``prompts`` (questions, formatted with the chat template, unless
    ``raw_prompts``), left-padded in length-sorted batches with the KV cache. Prompts longer
    than ``max_prompt_tokens`` keep their last tokens. Special tokens (BOS) are added to raw
    prompts and to prompts of a tokenizer without chat template, unless ``add_special_tokens``
    says otherwise (pass False for raw prompts already rendered with the chat template).
    Finished answers leave the batch early (``early_exit``) unless the model's generation
    config changes the logits; ``early_exit=False`` runs ``model.generate`` batch by batch."""
    texts, add_special = _prompt_texts(tokenizer, prompts, raw_prompts, add_special_tokens)
    options = {"max_new_tokens": max_new_tokens, "max_prompt_tokens": max_prompt_tokens}
    if early_exit and plain_greedy_config(model):
        return _early_exit_greedy(model, tokenizer, texts, add_special, batch_size, desc, **options)
    groups = _generate_groups(
        model,
        tokenizer,
        texts,
        add_special=add_special,
        batch_size=batch_size,
        desc=desc,
        **options,
    )
    return [group[0] for group in groups]


def _early_exit_greedy(
    model, tokenizer, texts, add_special, batch_size, desc, max_new_tokens, max_prompt_tokens
) -> list[str]:
    """:func:`generate` through :func:`greedy.greedy_token_ids`: finished answers leave the
    batch and waiting prompts take their place."""
    truncate = {"truncation": True, "max_length": max_prompt_tokens} if max_prompt_tokens else {}
    with _left_padded_eval(model, tokenizer), tqdm(total=len(texts), desc=desc, leave=False) as bar:
        prompts = tokenizer(list(texts), add_special_tokens=add_special, **truncate)["input_ids"]
        answers = greedy_token_ids(
            model,
            prompts,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            stop_ids=stop_token_ids(model, tokenizer),
            pad_id=tokenizer.pad_token_id,
            cache_argument=cache_argument_name(model),
            on_finished=bar.update,
        )
    return [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in answers]


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
    with torch.random.fork_rng(devices=[] if model_device(model).type == "cpu" else None):
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
