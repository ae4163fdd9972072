"""Benchmark: TIF and its targeted family against the baselines on MUSE-News at a scale this
CPU can run (MUSE-mini, protocol v2; the protocol is in bench_muse.py and benchmarks/README.md).

Fine-tunes the target and retrained models on 24 news excerpts (+ 8 retain texts), evaluates
them, runs every family at every learning rate with a probe (VerbMem, KnowMem-retain, UW/GW
token probabilities) at each epoch end, reruns each family's best setting with a second seed
and writes results/muse_mini.{json,md,png}; tasks run as one-thread processes, two at a time.
Every step is cached under ``--work``; finished runs are kept in results/muse_mini_runs/.
Usage: python benchmarks/muse_mini.py [--workers 2] [--quick] [--work runs/muse_mini]
"""

from __future__ import annotations

from pathlib import Path

from bench_muse import SPEC
from engine import run_protocol

if __name__ == "__main__":
    run_protocol(Path(__file__).resolve(), SPEC, __doc__.splitlines()[0])
