"""Benchmark: TIF and its targeted family against the baselines on TOFU at a scale this CPU can
run (TOFU-mini, protocol v2; the protocol is in bench_tofu.py and benchmarks/README.md).

Fine-tunes the target and retain models, evaluates them, runs every family at every learning
rate with a probe at each epoch end, reruns each family's best setting with a second seed and
writes results/tofu_mini.{json,md,png}; tasks run as one-thread processes, two at a time.
Every step is cached under ``--work``; finished runs are kept in results/tofu_mini_runs/.
Usage: python benchmarks/tofu_mini.py [--workers 2] [--quick] [--work runs/tofu_mini]
"""

from __future__ import annotations

from pathlib import Path

from bench_tofu import SPEC
from engine import run_protocol

if __name__ == "__main__":
    run_protocol(Path(__file__).resolve(), SPEC, __doc__.splitlines()[0])
