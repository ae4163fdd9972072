"""Protocol v2 helpers shared by the TOFU-mini and MUSE-mini benchmarks: evaluate a run at the
end of every epoch (a trajectory, not a single point), pick the best checkpoint under a utility
floor, the Pareto frontier, and a small scheduler that runs independent tasks as one-thread
subprocesses side by side (two per 2-core machine).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common import log_step
from transformers import TrainerCallback


def epoch_end_steps(n_examples: int, per_step: int, epochs: int) -> dict[int, int]:
    """Optimizer step after which each epoch ends, when epochs flow into each other and only
    full windows step (``step_count="floor"``): epoch e ends after floor(e·N / per_step) steps.
    Epochs that end on the same step keep the later epoch."""
    ends = {}
    for epoch in range(1, epochs + 1):
        step = math.floor(epoch * n_examples / per_step)
        if step >= 1:
            ends[step] = epoch
    return ends


class EpochProbe(TrainerCallback):
    """At the end of every epoch: save the model into ``folder/epoch<e>`` and call
    ``probe(model, epoch)`` (cheap metrics), with the model in eval mode and no gradients."""

    def __init__(self, ends: dict[int, int], folder: Path, tokenizer, probe: Callable):
        self.ends, self.folder, self.tokenizer, self.probe = ends, folder, tokenizer, probe

    def on_step_end(self, args, state, control, model=None, **kwargs):
        epoch = self.ends.get(state.global_step)
        if epoch is None:
            return
        import torch

        target = self.folder / f"epoch{epoch}"
        model.save_pretrained(target, safe_serialization=True)
        self.tokenizer.save_pretrained(target)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            self.probe(model, epoch)
        model.train(was_training)


def best_under_floor(
    points: list[dict], score: str, utility: str, floor: float, higher_is_better: bool
) -> list[dict]:
    """``points`` whose ``utility`` ≥ ``floor``, best ``score`` first."""
    kept = [p for p in points if p[utility] is not None and p[utility] >= floor]
    return sorted(kept, key=lambda p: p[score], reverse=higher_is_better)


def pareto_frontier(points: dict[str, tuple[float, float]], x_higher: bool) -> list[str]:
    """Names of the points no other point beats on both axes (y: higher is better; x: higher
    when ``x_higher``, else lower)."""

    def beats(a, b):
        ax, bx = (a[0], b[0]) if x_higher else (-a[0], -b[0])
        return ax >= bx and a[1] >= b[1] and (ax > bx or a[1] > b[1])

    return [n for n, p in points.items() if not any(beats(q, p) for q in points.values())]


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def cached_json(path: Path, signature: dict, compute: Callable[[], dict]) -> dict:
    """``compute()`` unless ``path`` holds a result made with the same ``signature``."""
    saved = read_json(path)
    if saved and saved.get("signature") == json.loads(json.dumps(signature)):
        return saved["result"]
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"signature": signature, "result": result}))
    tmp.replace(path)
    return result


def remove_checkpoints(folder: Path, keep: set[str]) -> None:
    """Delete the ``epoch<e>`` folders of a finished run except those named in ``keep``."""
    for child in folder.glob("epoch*"):
        if child.name not in keep:
            shutil.rmtree(child)


def run_wave(script: Path, tasks: list[str], workers: int, extra: list[str], logs: Path) -> None:
    """Run ``script --task T --threads 1`` for every task, ``workers`` at a time; raise if any
    fails (its log is in ``logs/T.log``)."""
    logs.mkdir(parents=True, exist_ok=True)
    pending, running, failed = list(tasks), {}, []
    while pending or running:
        while pending and len(running) < workers:
            task = pending.pop(0)
            log_step(f"start {task}")
            with open(logs / f"{task}.log", "a") as log:
                command = [sys.executable, str(script), "--task", task, "--threads", "1", *extra]
                running[task] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(5)
        for task, process in list(running.items()):
            if process.poll() is not None:
                del running[task]
                log_step(f"done {task} (exit {process.returncode})")
                if process.returncode:
                    failed.append(task)
    if failed:
        raise SystemExit(f"tasks failed: {', '.join(failed)} (see {logs})")
