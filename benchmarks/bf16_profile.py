"""Benchmark: where the time of `tif eval tofu` goes in bfloat16 and in float32, per phase,
against the matmul roofline of this CPU, in one process (one torch thread).

Phases (the evaluator's own functions, the first N items of each set): ``score_shared``
(every answer variant of the forget questions: a prompt pass, then the answers over its KV
cache), ``score_plain`` (the loss-based MIA scoring of retain answers: length-sorted plain
batches), ``generate`` (early-exit greedy answers to retain questions). The two precisions run
alternately, ``--repeats`` times each (medians). Also: the bf16 / fp32 matmul GFLOP/s of the
evaluator's shapes at one thread (the roofline), the linear-layer FLOPs of each phase (hooks;
attention left out, so the achieved rates are lower bounds), the top operators of each phase
(torch.profiler, one run), and the scoring tail (log p and argmax over the vocabulary) done the
old way (``tokens.token_logprobs`` + ``argmax``) and the new (``scoring.scored_token_stats``).
Writes results/bf16_profile.json.
Usage: python benchmarks/bf16_profile.py [--items 8] [--repeats 3] [--new-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from common import machine, median, write_results
from torch.profiler import ProfilerActivity, profile

from tif_unlearn import tokens
from tif_unlearn.evaluate import scoring, tofu
from tif_unlearn.evaluate.options import TofuEvalOptions
from tif_unlearn.evaluate.tofu_data import load_eval_rows
from tif_unlearn.models import load_model

DTYPES = ("bfloat16", "float32")
# (M, K, N): a scoring batch through an MLP projection, a decoding step of 32 rows, the
# vocabulary projection of 256 answer positions
SHAPES = {"body_m512": (512, 576, 1536), "decode_m32": (32, 576, 1536), "lm_head_m256": (256, 576, 49152)}  # fmt: skip


def matmul_gflops(dtype: torch.dtype, shape: tuple[int, int, int], repeats: int = 15) -> float:
    m, k, n = shape
    x, w = torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
    for _ in range(3):
        torch.nn.functional.linear(x, w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(x, w)
        times.append(time.perf_counter() - start)
    return round(2 * m * k * n / min(times) / 1e9, 1)  # the best run: the least disturbed


class LinearFlops:
    """Counts 2·in·out FLOPs per token of every nn.Linear (forward hooks)."""

    def __init__(self, model):
        self.flops = 0
        self.handles = [
            module.register_forward_hook(self.count)
            for module in model.modules()
            if isinstance(module, torch.nn.Linear)
        ]

    def count(self, module, inputs, output):
        self.flops += 2 * inputs[0].numel() * module.out_features

    def remove(self):
        for handle in self.handles:
            handle.remove()


def phases(options: TofuEvalOptions) -> dict:
    forget, retain = load_eval_rows("forget", options), load_eval_rows("retain", options)
    return {
        "score_shared": lambda m, t: tofu._score_pairs(m, t, forget, options, "forget"),
        "score_plain": lambda m, t: tofu.mia_scores(m, t, retain, options, "mia"),
        "generate": lambda m, t: tofu._greedy_answers(m, t, retain, "retain", options),
    }


def legacy_token_stats(logits, labels):
    """The scoring tail before: a float32 log-sum-exp per row, then argmax over (B, T, V)."""
    keep = labels != tokens.IGNORE_INDEX
    return tokens.token_logprobs(logits, labels)[keep].cpu(), logits.argmax(-1)[keep].cpu()


def time_phases(models: dict, options: TofuEvalOptions, repeats: int) -> dict:
    runs = phases(options)
    walls = {(p, d): [] for p in runs for d in models}
    outputs = {}
    for _ in range(repeats):
        for phase, run in runs.items():
            for dtype, (model, tokenizer) in models.items():
                start = time.perf_counter()
                outputs[(phase, dtype)] = run(model, tokenizer)
                walls[(phase, dtype)].append(time.perf_counter() - start)
    return {"walls": walls, "outputs": outputs}


def flops_of(models: dict, options: TofuEvalOptions) -> dict:
    """Linear-layer GFLOPs of each phase (counted on the float32 model: the same work)."""
    model, tokenizer = models["float32"]
    counts = {}
    for phase, run in phases(options).items():
        counter = LinearFlops(model)
        run(model, tokenizer)
        counter.remove()
        counts[phase] = counter.flops / 1e9
    return counts


def top_operators(models: dict, options: TofuEvalOptions, n: int = 8) -> dict:
    table = {}
    for phase, run in phases(options).items():
        for dtype, (model, tokenizer) in models.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run(model, tokenizer)
            events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
            total = sum(e.self_cpu_time_total for e in events)
            table[f"{phase}/{dtype}"] = {
                e.key: round(e.self_cpu_time_total / total, 3) for e in events[:n]
            }
    return table


def scoring_tail(models: dict, options: TofuEvalOptions, repeats: int) -> dict:
    """Old and new scoring tail, both precisions, in the shared-prompt phase."""
    result = {}
    run = phases(options)["score_shared"]
    for name, stats in (("old", legacy_token_stats), ("new", scoring.scored_token_stats)):
        scoring.scored_token_stats = stats
        for dtype, (model, tokenizer) in models.items():
            walls = []
            for _ in range(repeats):
                start = time.perf_counter()
                run(model, tokenizer)
                walls.append(time.perf_counter() - start)
            result[f"{name}/{dtype}"] = round(median(walls), 2)
    scoring.scored_token_stats = stats
    return result


def summary(timed: dict, gflops: dict, roofline: dict) -> dict:
    table = {}
    for phase in gflops:
        row = {"linear_gflop": round(gflops[phase], 1)}
        for dtype in DTYPES:
            wall = median(timed["walls"][(phase, dtype)])
            shape = "decode_m32" if phase == "generate" else "body_m512"
            rate = gflops[phase] / wall
            row[dtype] = {
                "wall_s": round(wall, 2),
                "walls_s": [round(w, 2) for w in timed["walls"][(phase, dtype)]],
                "linear_gflops_per_s": round(rate, 1),
                "of_roofline": round(rate / roofline[dtype][shape], 3),
            }
        row["bf16_speedup"] = round(row["float32"]["wall_s"] / row["bfloat16"]["wall_s"], 2)
        table[phase] = row
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=8, help="items of each set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--no-profiler", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = {"start": os.getloadavg()}
    roofline = {
        name: {key: matmul_gflops(getattr(torch, name), shape) for key, shape in SHAPES.items()}
        for name in DTYPES
    }
    print("roofline (GFLOP/s, 1 thread):", roofline, flush=True)
    models = {name: load_model("smollm2-135m", dtype=name) for name in DTYPES}
    options = TofuEvalOptions(max_items=args.items, max_new_tokens=args.new_tokens)
    timed = time_phases(models, options, args.repeats)
    bf16_answers, fp32_answers = (timed["outputs"][("generate", d)] for d in DTYPES)
    same = sum(a == b for a, b in zip(bf16_answers, fp32_answers, strict=True))
    results = {
        "machine": machine(),
        "setting": vars(args) | {"model": "smollm2-135m", "generate_batch_size": 32},
        "roofline_gflops_per_s": roofline,
        "phases": summary(timed, flops_of(models, options), roofline),
        "identical_greedy_answers_bf16_vs_fp32": f"{same}/{len(bf16_answers)}",
        "scoring_tail_s": scoring_tail(models, options, args.repeats),
    }
    print(results["phases"], results["scoring_tail_s"], flush=True)
    if not args.no_profiler:
        results["top_operators_self_time_share"] = top_operators(models, options)
    load["end"] = os.getloadavg()
    results["load_average"] = {k: [round(x, 1) for x in v] for k, v in load.items()}
    write_results("bf16_profile.json", results)


if __name__ == "__main__":
    main()
