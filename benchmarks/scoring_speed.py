"""Benchmark: the TOFU evaluator's scoring (every answer variant of each question: the answer,
its paraphrase and the perturbed answers) against this machine's matmul bound: a roofline.

Scores ``--questions`` TOFU retain questions with SmolLM2-135M (fp32, one thread) the way
``tif eval tofu`` does (answers to one question over one pass of its prompt, the rest packed to
a token budget, logits only at answer positions), ``--repeats`` times, and counts the work
actually done with forward hooks: positions through the transformer body and rows through the
vocabulary projection. Achieved GFLOP/s = (2 x body parameters x positions + 2 x projection
parameters x projected rows) / wall, a lower bound (attention scores left out), set against
the fp32 matmul rate of a 2048 x 2048 product measured in the same process.
Usage: python benchmarks/scoring_speed.py [--questions 64] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

from common import machine, median, write_results
from speed import roofline

from tif_unlearn.evaluate import tofu
from tif_unlearn.evaluate.options import TofuEvalOptions
from tif_unlearn.evaluate.tofu_data import load_eval_rows
from tif_unlearn.models import load_model


def count_work(model) -> dict:
    """Hooks that add up positions through the body and rows through the projection."""
    work = {"positions": 0, "projected": 0}
    head = model.get_output_embeddings()

    def body(_module, _args, kwargs, _out):
        work["positions"] += kwargs["input_ids"].numel()

    def projection(_module, args, _out):
        work["projected"] += args[0].shape[:-1].numel()

    model.register_forward_hook(body, with_kwargs=True)
    head.register_forward_hook(projection)
    return work


def parameter_split(model) -> tuple[int, int]:
    """(body parameters that multiply every position, projection parameters)."""
    head = model.get_output_embeddings().weight
    embedding = model.get_input_embeddings().weight
    lookups = {id(head), id(embedding)}
    body = sum(p.numel() for p in model.parameters() if id(p) not in lookups)
    return body, head.numel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    options = TofuEvalOptions(max_items=args.questions)
    rows = load_eval_rows("retain", options)
    work = count_work(model)
    walls = []
    for _ in range(args.repeats):
        work.update(positions=0, projected=0)
        start = time.perf_counter()
        table = tofu._score_pairs(model, tokenizer, rows, options, desc="scoring")
        walls.append(round(time.perf_counter() - start, 2))
        print(f"scoring {len(rows)} questions: {walls[-1]} s", flush=True)
    body, projection = parameter_split(model)
    wall = median(walls)
    flops = 2 * body * work["positions"] + 2 * projection * work["projected"]
    answers = sum(len(scored) for scored in table.values())
    write_results(
        "scoring_speed.json",
        {
            "machine": machine(),
            "model": f"{args.model} (fp32)",
            "setting": vars(args) | {"batch_size": options.batch_size},
            "answers_scored": answers,
            "wall_s": wall,
            "walls_s": walls,
            "answers_per_s": round(answers / wall, 2),
            "work": {**work, "body_params": body, "projection_params": projection},
            "roofline": roofline(flops, wall),
        },
    )


if __name__ == "__main__":
    main()
