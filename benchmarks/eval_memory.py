"""Benchmark: peak memory (RSS) of one phase of the TOFU evaluator, in a process of its own.

Phases: ``score`` (every answer variant of N items of each set, answers to one question over
one pass of its prompt), ``mia`` (the loss-based MIA scoring of N retain answers: plain
batches), ``gen`` (early-exit greedy answers to N retain questions, 200 new tokens, N rows at
once). Prints the peak RSS after loading SmolLM2-135M (fp32) and after the phase; numbers so
measured are in results/eval_memory.json (written by hand from these prints: one process per
phase, as the peak of a process never goes down).
Usage: python benchmarks/eval_memory.py score|mia|gen [N]
"""

from __future__ import annotations

import resource
import sys
import time

import torch

from tif_unlearn.evaluate import tofu
from tif_unlearn.evaluate.options import TofuEvalOptions
from tif_unlearn.evaluate.tofu_data import load_eval_rows
from tif_unlearn.models import load_model


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    phase, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 64
    torch.set_num_threads(1)
    model, tokenizer = load_model("smollm2-135m")
    loaded = peak_rss_mb()
    options = TofuEvalOptions(max_items=n, max_new_tokens=200, generate_batch_size=n)
    start = time.time()
    if phase == "score":
        for name in ("forget", "retain", "real_authors", "world_facts"):
            tofu._score_pairs(model, tokenizer, load_eval_rows(name, options), options, name)
    elif phase == "mia":
        tofu.mia_scores(model, tokenizer, load_eval_rows("retain", options), options, "mia")
    elif phase == "gen":
        tofu._greedy_answers(model, tokenizer, load_eval_rows("retain", options), "retain", options)
    else:
        raise SystemExit(f"unknown phase {phase!r}: score | mia | gen")
    print(
        f"{phase} {n}: loaded {loaded:.0f} MB, peak {peak_rss_mb():.0f} MB, {time.time() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
