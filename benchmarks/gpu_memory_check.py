"""Check the activation formula of ``gpu_memory.py`` on CPU: the bytes autograd saves for the
backward pass of a tiny Llama (bf16 autocast, and float32) against the formula's count."""

from __future__ import annotations

import torch
from gpu_memory import Arch, block_bytes_per_token

BATCH, LENGTH = 2, 48
TINY = Arch(params=0, layers=2, hidden=64, intermediate=176, kv=32, vocab=1000)


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=TINY.vocab,
        hidden_size=TINY.hidden,
        intermediate_size=TINY.intermediate,
        num_hidden_layers=TINY.layers,
        num_attention_heads=4,
        num_key_value_heads=2,  # kv = 2 heads x 16 = 32
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def saved_activation_bytes(model, autocast: bool) -> int:
    """Bytes of the distinct storages autograd keeps for backward (the model's forward only),
    leaving out parameters and their autocast copies (2-D tensors shaped like a weight or its
    transpose: ``gpu_memory`` counts those with the weights)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    weights = [tuple(p.shape) for p in model.parameters() if p.dim() == 2]
    weight_shapes = set(weights) | {shape[::-1] for shape in weights}
    seen: dict[int, int] = {}

    def pack(tensor):
        ptr = tensor.untyped_storage().data_ptr()
        copy = tensor.dim() == 2 and tuple(tensor.shape) in weight_shapes
        if ptr not in params and not copy:
            seen[ptr] = tensor.untyped_storage().nbytes()
        return tensor

    ids = torch.randint(TINY.vocab, (BATCH, LENGTH))
    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    with hooks, torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        model.model(input_ids=ids)  # the blocks and the final norm, without lm_head
    return sum(seen.values())


def check_formula() -> dict:
    """Measured / predicted saved bytes for the tiny model, per precision."""
    model = tiny_llama()
    tokens = BATCH * LENGTH
    rows = {}
    for name, autocast, residual, matmul in (
        ("bf16-autocast", True, 4, 2),
        ("float32", False, 4, 4),
    ):
        measured = saved_activation_bytes(model, autocast)
        blocks = TINY.layers * block_bytes_per_token(TINY, residual, matmul, autocast)
        predicted = tokens * (blocks + 2 * residual * TINY.hidden)  # + the final norm
        rows[name] = {
            "measured_bytes": measured,
            "predicted_bytes": predicted,
            "ratio": round(measured / predicted, 3),
        }
    return {"model": "tiny Llama " + str(TINY), "batch": BATCH, "length": LENGTH, **rows}


# ------------------------------------------------------- autocast weight copies while caching

COPIES_CODE = """
import sys, psutil, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
config = LlamaConfig(vocab_size=8000, hidden_size=512, intermediate_size=1408,
                     num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4)
model = LlamaForCausalLM(config)
weights = sum(p.numel() * 4 for p in model.parameters())
ids = torch.randint(8000, (1, 16))
process = psutil.Process()
model(input_ids=ids)  # warm up outside autocast
base = process.memory_info().rss
with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=sys.argv[1] == "1"):
    model(input_ids=ids)
    held = process.memory_info().rss
print(weights, held - base)
"""


def caching_copies_check() -> dict:
    """Bytes still held after no_grad forward passes under CPU bf16 autocast with its weight
    cache on (as the reference cache ran before issue 36) and off (now), in fresh processes."""
    import subprocess
    import sys

    rows = {}
    for name, flag in (("autocast_cache_on", "1"), ("autocast_cache_off", "0")):
        ps = subprocess.run(
            [sys.executable, "-c", COPIES_CODE, flag], capture_output=True, text=True, check=True
        )
        weights, held = (int(x) for x in ps.stdout.split()[-2:])
        rows[name] = {"fp32_weight_bytes": weights, "rss_held_inside_autocast": held}
    return rows
