"""Tiny Llama models whose next-token distribution is planted by hand, so that what `tif eval`
reports can be computed by hand: the logits depend only on the current token.

How: every decoder layer adds nothing to the residual stream (``o_proj`` and ``down_proj`` are
zero), so the last hidden state is the current token's embedding; each token's embedding is a
unit vector e_c of the "context" c it belongs to (default: context 0), the final RMSNorm turns
it into sqrt(hidden) * e_c, and column c of ``lm_head`` holds context c's logits divided by
sqrt(hidden). Up to ``HIDDEN`` contexts.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

HIDDEN = 64
MARGIN = 30.0  # logit of a planted next token over the others' 0: p > 1 - 400 * e^-30


def next_token_llama(vocab_size: int, logits: dict[int | None, torch.Tensor]):
    """A model whose logits after token t are ``logits[t]`` (``logits[None]`` after any other
    token; zeros = uniform where absent)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        rms_norm_eps=1e-12,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    tokens = [t for t in logits if t is not None]
    if len(tokens) >= HIDDEN:
        raise ValueError(f"at most {HIDDEN - 1} tokens with their own logits")
    scale = math.sqrt(HIDDEN)  # RMSNorm(e_c) = sqrt(HIDDEN) * e_c
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        embed, head = model.model.embed_tokens.weight, model.lm_head.weight  # (V, H), (V, H)
        embed.zero_()
        embed[:, 0] = 1.0
        head.zero_()
        head[:, 0] = logits.get(None, torch.zeros(vocab_size)) / scale
        for context, token in enumerate(tokens, start=1):
            embed[token] = 0.0
            embed[token, context] = 1.0
            head[:, context] = logits[token] / scale
    return model


def chain_logits(vocab_size: int, chain: list[int]) -> dict[int | None, torch.Tensor]:
    """Logits under which greedy decoding after ``chain[0]`` says ``chain[1:]``, in order (a
    token that comes back must be followed by the same token each time)."""
    logits: dict[int | None, torch.Tensor] = {}
    for current, following in zip(chain, chain[1:], strict=False):
        row = torch.zeros(vocab_size)
        row[following] = MARGIN
        if current in logits and not torch.equal(logits[current], row):
            raise ValueError(f"token {current} is followed by two different tokens")
        logits[current] = row
    return logits


def save_planted(model, tokenizer, folder: Path) -> Path:
    """A model folder `tif --model` loads; generation stops only at the tokenizer's EOS."""
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.bos_token_id = None
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
