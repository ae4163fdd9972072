"""Benchmark: peak memory (RSS) of one phase of the TOFU evaluator, in a process of its own.

Phases: ``load`` (loading SmolLM2-135M alone), ``score`` (every answer variant of N items of
each set, answers to one question over one pass of its prompt), ``mia`` (the loss-based MIA
scoring of N retain answers: plain batches), ``gen`` (early-exit greedy answers to N retain
questions, 200 new tokens, N rows at once). Prints the peak RSS after loading the model in
``--dtype`` and after the phase, and what the process holds after the phase; numbers so
measured are in results/eval_memory.json (written by hand from these prints: one process per
phase, as the peak of a process never goes down).
Usage: python benchmarks/eval_memory.py load|score|mia|gen [N] [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

from tif_unlearn.evaluate import tofu
from tif_unlearn.evaluate.options import TofuEvalOptions
from tif_unlearn.evaluate.tofu_data import load_eval_rows
from tif_unlearn.models import load_model


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> dict[str, float]:
    """Resident memory now: anonymous (heap: weights copied into it, activations) and file-
    backed (a memory-mapped weights file, shared libraries)."""
    wanted = ("VmRSS", "RssAnon", "RssFile")
    lines = Path("/proc/self/status").read_text().splitlines()
    return {
        key: round(int(line.split()[1]) / 1024)
        for line in lines
        if (key := line.split(":")[0]) in wanted
    }


def run_phase(phase: str, model, tokenizer, options: TofuEvalOptions) -> None:
    if phase == "score":
        for name in ("forget", "retain", "real_authors", "world_facts"):
            tofu._score_pairs(model, tokenizer, load_eval_rows(name, options), options, name)
    elif phase == "mia":
        tofu.mia_scores(model, tokenizer, load_eval_rows("retain", options), options, "mia")
    elif phase == "gen":
        tofu._greedy_answers(model, tokenizer, load_eval_rows("retain", options), "retain", options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("load", "score", "mia", "gen"))
    parser.add_argument("n", type=int, nargs="?", default=64, help="items (gen: rows at once)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, tokenizer = load_model("smollm2-135m", dtype=args.dtype)
    loaded, after_load = peak_rss_mb(), rss_mb()
    options = TofuEvalOptions(max_items=args.n, max_new_tokens=200, generate_batch_size=args.n)
    start = time.time()
    run_phase(args.phase, model, tokenizer, options)
    print(
        f"{args.phase} {args.n} {args.dtype}: loaded {loaded:.0f} MB (then {after_load}), "
        f"peak {peak_rss_mb():.0f} MB, now {rss_mb()}, {time.time() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
