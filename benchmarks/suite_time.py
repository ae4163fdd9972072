"""Benchmark: wall time of the whole test suite (slow tests included), in one process and with
pytest-xdist workers, runs interleaved so that both see the same machine.

Run it on a quiet machine (it uses every core). Writes results/test_suite_time.json.
Usage: python benchmarks/suite_time.py [--runs 3] [--workers 0 2]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from common import log_step, machine, median, write_results

ROOT = Path(__file__).resolve().parents[1]


def run_suite(workers: int, seed: int) -> dict:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "randomly", f"--randomly-seed={seed}"]
    command += ["-n", str(workers)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    passed = re.search(r"(\d+) passed", summary)
    if result.returncode != 0:
        raise SystemExit(f"the suite failed with -n {workers}: {summary}")
    return {"wall_s": round(wall, 1), "passed": int(passed.group(1)) if passed else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args()
    runs: dict[int, list[dict]] = {n: [] for n in args.workers}
    for index in range(args.runs):
        for workers in args.workers:
            runs[workers].append(run_suite(workers, seed=1000 + index))
            log_step(f"-n {workers}, run {index + 1}: {runs[workers][-1]}")
    summary = {
        f"workers_{n}": {"median_wall_s": median([r["wall_s"] for r in rs]), "runs": rs}
        for n, rs in runs.items()
    }
    write_results("test_suite_time.json", {"machine": machine(), **summary})


if __name__ == "__main__":
    main()
