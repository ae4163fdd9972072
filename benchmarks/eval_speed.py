"""Benchmark: TOFU forget01 evaluation of SmolLM2-135M, batched vs one item at a time.

Runs the same evaluation code (tif_unlearn.evaluate.tofu) twice on the same items: with the
default batching (length-sorted batches, left-padded KV-cached greedy generation) and with
batch size 1. Reports wall time, generated tokens/s and scored (forward) tokens/s.
Usage: python benchmarks/eval_speed.py [--items 20] [--full] [--dtype float32|bfloat16]
"""

from __future__ import annotations

import argparse

from common import machine, median, timed, write_results

from tif_unlearn.data.records import QARecord
from tif_unlearn.evaluate import generation, scoring
from tif_unlearn.evaluate.tofu import evaluate_tofu
from tif_unlearn.evaluate.tofu_data import TofuEvalOptions
from tif_unlearn.models import load_model


class Counter:
    """Wraps generation and scoring to count generated and scored tokens."""

    def __init__(self, tokenizer):
        self.tokenizer, self.generated, self.scored = tokenizer, 0, 0
        self._generate, self._score = generation.generate, scoring.score_records

    def install(self, module):
        def generate(*args, **kwargs):
            out = self._generate(*args, **kwargs)
            self.generated += sum(len(self.tokenizer(o).input_ids) for o in out)
            return out

        def score_records(*args, **kwargs):
            out = self._score(*args, **kwargs)
            self.scored += sum(s.n_tokens for s in out)
            return out

        module.generate, module.score_answers = (
            generate,
            (
                lambda model, tok, pairs, **kw: score_records(
                    model, tok, [QARecord(q, a) for q, a in pairs], **kw
                )
            ),
        )


def run(model, tokenizer, options: TofuEvalOptions, repeats: int) -> dict:
    from tif_unlearn.evaluate import tofu as tofu_module

    walls, counter = [], None
    for _ in range(repeats):
        counter = Counter(tokenizer)
        counter.install(tofu_module)
        _, wall = timed(evaluate_tofu, model, tokenizer, options)
        walls.append(wall)
    tofu_module.generate, tofu_module.score_answers = generation.generate, scoring.score_answers
    wall = median(walls)
    return {
        "wall_s": round(wall, 2),
        "walls_s": [round(w, 2) for w in walls],
        "generated_tokens": counter.generated,
        "scored_tokens": counter.scored,
        "generated_tokens_per_s_overall": round(counter.generated / wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=20, help="items per set for the comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repeats-single", type=int, default=2, help="repeats of the slow run")
    parser.add_argument("--full", action="store_true", help="also time the full batched evaluation")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, tokenizer = load_model("smollm2-135m", dtype=args.dtype)
    results = {
        "machine": machine(),
        "model": f"smollm2-135m ({args.dtype})",
        "items_per_set": args.items,
    }
    batched = TofuEvalOptions(max_items=args.items, batch_size=16, max_new_tokens=64)
    single = TofuEvalOptions(
        max_items=args.items, batch_size=1, generate_batch_size=1, max_new_tokens=64
    )
    print("batched ...")
    results["batched"] = run(model, tokenizer, batched, args.repeats)
    print(results["batched"])
    print("one item at a time ...")
    results["one_at_a_time"] = run(model, tokenizer, single, args.repeats_single)
    print(results["one_at_a_time"])
    results["speedup"] = round(results["one_at_a_time"]["wall_s"] / results["batched"]["wall_s"], 2)
    if args.full:
        print("full forget01 evaluation, batched ...")
        results["full_batched"] = run(model, tokenizer, TofuEvalOptions(batch_size=16), 1)
    write_results("eval_speed.json", results)
    print(f"speed-up of batching: {results['speedup']}x")


if __name__ == "__main__":
    main()
