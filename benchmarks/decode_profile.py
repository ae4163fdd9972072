"""Benchmark: where a greedy decoding step goes, and generation's peak memory.

``step``: one forward pass of a 64-row batch after a 120-token prompt (SmolLM2-135M, one
thread), median over 35 steps, and the profiler's top operators over 20 more; per attention
implementation (``sdpa``, ``eager``) and KV cache (in place, ``kv_buffer``, or transformers'
concatenating one). ``memory``: peak RSS of generating 160 TOFU retain answers of up to 120
tokens at batch 64 in a fresh process (so run it once per setting: dtype and
``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` from the environment). Appends to
``results/decode_profile.json``.
Usage: python benchmarks/decode_profile.py step DTYPE sdpa|eager buf|nobuf
       python benchmarks/decode_profile.py memory DTYPE
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from common import RESULTS, machine


def step(dtype: str, attention: str, buffered: bool, rows: int = 64) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from tif_unlearn.evaluate.kv_buffer import buffer_cache
    from tif_unlearn.evaluate.scoring import returned_cache
    from tif_unlearn.models import load_model

    model, _ = load_model("smollm2-135m", dtype=dtype)
    model.eval()
    model.set_attn_implementation(attention)
    ids = torch.randint(100, 1000, (rows, 120))
    times = []
    with torch.no_grad():
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        cache = returned_cache(out)
        if buffered:
            buffer_cache(cache)
        mask, positions = torch.ones(rows, 120, dtype=torch.long), torch.full((rows,), 119)
        tokens = out.logits[:, -1].max(-1).indices
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(60):
                started = time.perf_counter()
                mask = torch.cat([mask, torch.ones(rows, 1, dtype=torch.long)], 1)
                positions = positions + 1
                out = model(input_ids=tokens[:, None], attention_mask=mask,
                            position_ids=positions[:, None], use_cache=True, cache=cache)  # fmt: skip
                tokens = out.logits[:, -1].max(-1).indices
                times.append(time.perf_counter() - started)
    ops = sorted(profiler.key_averages(), key=lambda e: -e.self_cpu_time_total)[:6]
    total = sum(e.self_cpu_time_total for e in profiler.key_averages())
    steady = sorted(times[5:40])
    return {
        "median_step_ms": round(1000 * steady[len(steady) // 2], 1),
        "top_operators_share": {e.key: round(e.self_cpu_time_total / total, 3) for e in ops},
    }


def memory(dtype: str) -> dict:
    from tif_unlearn.data.tofu import load_tofu_split
    from tif_unlearn.evaluate.generation import generate
    from tif_unlearn.models import load_model

    model, tokenizer = load_model("smollm2-135m", dtype=dtype)
    rows = load_tofu_split("retain_perturbed", os.environ.get("TOFU_DIR", "auto"))[:160]
    started = time.process_time()
    generate(model, tokenizer, [r["question"] for r in rows], max_new_tokens=120, batch_size=64)
    return {
        "cpu_s": round(time.process_time() - started, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "onednn_primitive_cache_capacity": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
    }


def main() -> None:
    import torch

    torch.set_num_threads(1)
    kind, dtype, *rest = sys.argv[1:]
    result = step(dtype, rest[0], rest[1] == "buf") if kind == "step" else memory(dtype)
    row = {"kind": kind, "dtype": dtype, "options": rest, **result, "machine": machine()}
    print(json.dumps(row))
    path = RESULTS / "decode_profile.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps([*rows, row], indent=1) + "\n")


if __name__ == "__main__":
    main()
