"""Benchmark: greedy decoding with and without the in-place KV cache, at two batch sizes.

``old`` is decoding as before 2026-12-07 (transformers' ``DynamicLayer`` appending with
``torch.cat``, ``argmax`` over the vocabulary); ``new`` is today's (``evaluate/kv_buffer.py``,
``max(-1).indices``). Both run in one process, alternating, on the first ``--questions`` TOFU
retain questions, SmolLM2-135M, one thread; answers are compared by hash (they must match
within a batch size). Process CPU time is reported beside wall time: on a shared machine it
is the fairer measure of the work done. Writes ``results/generation_ab.json``.
Usage: python benchmarks/generation_ab.py [--dtype bfloat16 float32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time

from common import machine, write_results


def variants(greedy) -> dict:
    return {
        "old": (lambda cache: None, lambda logits: logits.argmax(-1)),
        "new": (greedy.buffer_cache, greedy._argmax),
    }


def measure(model, tokenizer, questions, args) -> list[dict]:
    from tif_unlearn.evaluate import greedy
    from tif_unlearn.evaluate.generation import generate

    rows, versions = [], variants(greedy)
    for repeat in range(args.repeats):
        for batch_size in args.batch_sizes:
            for name, (buffer, argmax) in versions.items():
                greedy.buffer_cache, greedy._argmax = buffer, argmax
                cpu, wall = time.process_time(), time.perf_counter()
                answers = generate(
                    model,
                    tokenizer,
                    questions,
                    max_new_tokens=args.new_tokens,
                    batch_size=batch_size,
                )
                rows.append({
                    "variant": name, "batch_size": batch_size, "repeat": repeat,
                    "cpu_s": round(time.process_time() - cpu, 2),
                    "wall_s": round(time.perf_counter() - wall, 2),
                    "answers_sha": hashlib.sha256("\x00".join(answers).encode()).hexdigest()[:12],
                })  # fmt: skip
                print(rows[-1], flush=True)
    greedy.buffer_cache, greedy._argmax = versions["new"]
    return rows


def summary(rows: list[dict]) -> dict:
    out = {}
    for key in sorted({(r["variant"], r["batch_size"]) for r in rows}):
        mine = [r for r in rows if (r["variant"], r["batch_size"]) == key]
        out[f"{key[0]}/batch{key[1]}"] = {
            "median_cpu_s": statistics.median(r["cpu_s"] for r in mine),
            "median_wall_s": statistics.median(r["wall_s"] for r in mine),
            "answers_sha": sorted({r["answers_sha"] for r in mine}),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from tif_unlearn.data.tofu import load_tofu_split
    from tif_unlearn.models import load_model

    torch.set_num_threads(1)
    rows = load_tofu_split("retain_perturbed", os.environ.get("TOFU_DIR", "auto"))
    questions = [r["question"] for r in rows[: args.questions]]
    results = {}
    for dtype in args.dtype:
        model, tokenizer = load_model("smollm2-135m", dtype=dtype)
        runs = measure(model, tokenizer, questions, args)
        results[dtype] = {"summary": summary(runs), "runs": runs}
    load = os.getloadavg()
    write_results("generation_ab.json", {
        "machine": machine(), "setting": vars(args) | {"model": "smollm2-135m", "set": "retain"},
        "load_average_at_end": [round(x, 1) for x in load], "results": results,
    })  # fmt: skip


if __name__ == "__main__":
    main()
