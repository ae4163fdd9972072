"""Benchmark: `tif eval qa` on the demo's forget person (10 forget + 30 retain questions,
best-of-8 leak audit, SmolLM2-135M fp32), timed as a user runs it after `tif demo`.

Two timed runs of the command (through ``tif_unlearn.cli.main``, model loading included):
the TIF model alone, and the TIF model with the fine-tuned model as ``--reference``. Needs a
finished ``tif demo`` folder (models and ``data/forget.annotated.jsonl``).
Usage: python benchmarks/eval_qa.py [--demo-dir runs/demo] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
from pathlib import Path

from common import machine, timed, write_results

from tif_unlearn.cli import main
from tif_unlearn.data.annotations import write_annotated
from tif_unlearn.demo import demo_data, demo_sets


def command(demo: Path, work: Path, out: Path, reference: bool) -> list[str]:
    argv = ["eval", "qa", "--model", str(demo / "tif"), "--leak-samples", "8"]
    argv += ["--forget", str(demo / "data" / "forget.annotated.jsonl")]
    argv += ["--retain", str(work / "retain.jsonl"), "--out", str(out)]
    return argv + (["--reference", str(demo / "finetuned")] if reference else [])


def run(demo: Path, work: Path, reference: bool) -> dict:
    out = work / f"eval_qa_{'with' if reference else 'without'}_reference.json"
    argv = command(demo, work, out, reference)
    code, seconds = timed(main, argv)
    if code != 0:
        raise SystemExit(f"tif eval qa failed ({code})")
    results = json.loads(out.read_text())
    summaries = {name: results[name]["summary"] for name in ("forget", "retain")}
    return {"command": "tif " + " ".join(argv), "wall_s": round(seconds, 1), "summary": summaries}


def main_benchmark() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo-dir", default="runs/demo")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    demo = Path(args.demo_dir)
    work = demo / "eval_qa_benchmark"
    work.mkdir(parents=True, exist_ok=True)
    write_annotated(demo_sets(demo_data(), 0)["retain"], work / "retain.jsonl")
    load_before = os.getloadavg()
    payload = {
        "machine": machine(),
        "model": "tif-unlearn demo models (SmolLM2-135M fp32): tif, reference finetuned",
        "items": {"forget": 10, "retain": 30},
        "leak_samples": 8,
        "goal_s": 300,
        "without_reference": run(demo, work, reference=False),
        "with_reference": run(demo, work, reference=True),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_average_1_5_15_before_after": [load_before, os.getloadavg()],
    }
    write_results("eval_qa.json", payload)


if __name__ == "__main__":
    main_benchmark()
