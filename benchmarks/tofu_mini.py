"""Benchmark: TIF and its targeted family against the baselines on TOFU at a scale this CPU can
run (TOFU-mini, protocol v2; benchmarks/README.md explains it).

- model SmolLM2-135M-Instruct (fp32); retain authors = the first 10 TOFU authors (200 QA), forget
  = forget01 (the last 2 authors, 40 QA); target = fine-tuned on retain + forget, retain model =
  fine-tuned on retain only (same recipe);
- every unlearning run follows the paper's TOFU recipe (10 epochs, effective batch 32, one
  warm-up epoch, linear decay, weight decay 0.01, floor(epochs·N/32) = 12 steps) with the 200
  retain QA as retain set; the tuning budget is the same for every method: the learning rates
  in ``LRS``, each method at its own default β;
- after every epoch a cheap probe (scoring only): forget-set truth ratios (→ Forget Quality
  against the retain model), the mean probability of the UW and GW tokens of the forget answers
  (GPT-4o spans), and a utility proxy (harmonic mean of probability and truth ratio on
  ``probe_items`` of each utility set);
- a run's point is its best-FQ epoch whose proxy utility ≥ 0.95 × the fine-tuned model's; that
  checkpoint gets the full evaluation (40 items per set, greedy answers) and must keep the full
  Model Utility ≥ 0.95 × the fine-tuned model's (else the next candidate);
- the best setting of every family is rerun with a second seed; the summary is their mean.

Every step is cached under ``--work``; finished runs are also kept (small JSON) in
``benchmarks/results/tofu_mini_runs/`` so that a new machine resumes without redoing them.
Usage: python benchmarks/tofu_mini.py [--workers 2] [--quick] [--work runs/tofu_mini]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import tofu_tasks as tasks
from common import log_step, machine
from trajectory import run_wave

from tif_unlearn.data.tofu import default_tofu_dir


def plan(quick: bool) -> tuple[list[str], list[str]]:
    """(first-wave run names, report order). Seeds are planned after the first wave."""
    protocol = tasks.protocol(quick)
    return list(protocol.runs), list(protocol.families)


def estimate_minutes(protocol, workers: int) -> float:
    """Rough wall time from the per-unit costs measured on this machine (1 thread, fp32)."""
    runs = len(protocol.runs) + len(protocol.families)  # second seeds included
    per_run = protocol.minutes_per_run
    return (2 * protocol.minutes_per_finetune + 2 * 8 + runs * per_run) / workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/tofu_mini", help="cache folder for models")
    parser.add_argument("--workers", type=int, default=2, help="one-thread processes at once")
    parser.add_argument("--quick", action="store_true", help="smoke run (< 15 min)")
    parser.add_argument("--task", help="(internal) run one task in this process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of a task")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not default_tofu_dir().is_dir():
        raise SystemExit("TOFU data not found (../shared/data/tofu): nothing to benchmark")
    work = Path(args.work).resolve()
    if args.task:
        tasks.run_task(args.task, work, args.quick, args.threads)
        return
    protocol = tasks.protocol(args.quick)
    log_step(f"estimate: about {estimate_minutes(protocol, args.workers):.0f} min, {machine()}")
    started, extra = time.time(), ["--work", str(work)] + (["--quick"] if args.quick else [])
    script, logs = Path(__file__).resolve(), work / "logs"
    run_wave(script, ["finetune:finetuned", "finetune:retain"], args.workers, extra, logs)
    run_wave(script, ["eval:retain", "eval:finetuned"], args.workers, extra, logs)
    run_wave(script, [f"run:{name}" for name in protocol.runs], args.workers, extra, logs)
    seeds = tasks.second_seed_runs(protocol, work)
    run_wave(script, [f"run:{name}" for name in seeds], args.workers, extra, logs)
    summary = tasks.write_report(protocol, work, time.time() - started)
    print(json.dumps(summary["best_under_utility_floor"], indent=1))


if __name__ == "__main__":
    main()
