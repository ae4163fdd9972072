"""Benchmark: early-exit greedy generation (evaluate/greedy.py) against ``model.generate``.

Both generate greedy answers to the same TOFU questions with SmolLM2-135M (fp32, one thread);
``model.generate`` runs each batch until its longest answer ends, early exit drops finished
answers and refills the batch from the queue. ``model.generate`` runs at
``--baseline-batch-size`` (the evaluator's batch before early exit: 32) and at ``--batch-size``,
early exit at ``--batch-size``; they are timed in alternation (``--repeats`` rounds) and the
answers compared.
Usage: python benchmarks/generation_speed.py [--split retain_perturbed] [--questions 64]
       [--batch-size 32] [--max-new-tokens 200] [--repeats 2] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import time

from common import machine, median, write_results
from speed import N_PARAMS, roofline

from tif_unlearn.data.tofu import load_tofu_split
from tif_unlearn.evaluate import generation
from tif_unlearn.models import load_model


def model_generate(model, tokenizer, questions, batch_size, max_new_tokens):
    return generation.generate(
        model,
        tokenizer,
        questions,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        desc="model.generate",
        early_exit=False,
    )


def early_exit(model, tokenizer, questions, batch_size, max_new_tokens):
    return generation.generate(
        model, tokenizer, questions, max_new_tokens=max_new_tokens, batch_size=batch_size
    )


def generation_flops(lengths: list[int]) -> float:
    """2 x parameters per generated token (attention and prefill left out: a lower bound)."""
    return 2 * N_PARAMS * sum(lengths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="retain_perturbed")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--baseline-batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="generation_speed.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    questions = [r["question"] for r in load_tofu_split(args.split)[: args.questions]]
    ways = {
        f"model_generate_batch{args.baseline_batch_size}": (
            model_generate,
            args.baseline_batch_size,
        ),
        f"model_generate_batch{args.batch_size}": (model_generate, args.batch_size),
        f"early_exit_batch{args.batch_size}": (early_exit, args.batch_size),
    }
    walls, answers = {name: [] for name in ways}, {}
    for _ in range(args.repeats):
        for name, (way, size) in ways.items():
            start = time.perf_counter()
            answers[name] = way(model, tokenizer, questions, size, args.max_new_tokens)
            walls[name].append(round(time.perf_counter() - start, 2))
            print(name, walls[name][-1], flush=True)
    baseline, ours = answers[next(iter(ways))], answers[f"early_exit_batch{args.batch_size}"]
    lengths = [len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in ours]
    same = sum(a == b for a, b in zip(ours, baseline, strict=True))
    payload = {
        "machine": machine(),
        "model": f"{args.model} (fp32)",
        "setting": vars(args),
        "wall_s": {name: median(values) for name, values in walls.items()},
        "walls_s": walls,
        "speedup_vs_baseline": {
            name: round(median(walls[next(iter(ways))]) / median(values), 2)
            for name, values in walls.items()
        },
        "identical_answers": f"{same}/{len(questions)}",
        "answer_tokens": {"mean": sum(lengths) / len(lengths), "max": max(lengths)},
        "roofline": roofline(
            generation_flops(lengths), median(walls[f"early_exit_batch{args.batch_size}"])
        ),
        "note": "timed in alternation in one process; compare only within one result",
    }
    write_results(args.out, payload)


if __name__ == "__main__":
    main()
