"""The efficacy protocol's engine, one for every benchmark (a :class:`bench_spec.Spec`:
bench_tofu.SPEC, bench_muse.SPEC). Fine-tune the base models, evaluate them, run every family at
every learning rate with a probe at each epoch end, choose each run's point, rerun each family's
best setting with a second seed, write the report (report.py). Tasks run as one-thread processes
from a dynamic work queue (:func:`schedule`: a task starts as soon as a worker is free and what
it waits for has finished); every step is cached under the work folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from bench_spec import Spec, run_command, runs_dir
from cache import cached_json
from common import log_step, machine
from probes import train_with_probes
from selection import complete_families, finished_runs, second_seeds

# --------------------------------------------------------------------------- one task


def run_task(spec: Spec, task: str, work: Path, quick: bool, threads: int, **options) -> None:
    """``finetune:<model>``, ``eval:<model>`` or ``run:<run name>``, in this process."""
    import torch

    torch.set_num_threads(threads)
    p = spec.protocol(quick, **options)
    files = spec.build_data(p, work)
    kind, _, name = task.partition(":")
    steps = {
        "finetune": spec.finetune,
        "eval": spec.evaluate_base,
        "run": partial(unlearning_run, spec),
    }
    if kind not in steps:
        raise SystemExit(f"unknown task {task!r}")
    steps[kind](p, name, files, work)


def base_probe(spec: Spec, p, work: Path, files: dict, reference) -> dict:
    """The fine-tuned model's probe: epoch 0 of every trajectory."""
    from tif_unlearn.models import load_model

    signature = {"model": spec.finetune_signature(p, "finetuned", files), "recipe": p.recipe()}

    def compute():
        model, tokenizer = load_model(str(work / "finetuned"))
        return spec.probe(p, model, tokenizer, files, reference)

    return cached_json(work / "probe" / "finetuned.json", signature, compute)


def unlearning_run(spec: Spec, p, name: str, files: dict, work: Path) -> dict:
    """Train with a probe at every epoch end, then choose the run's point. The result is kept in
    ``runs_dir`` (committed for the full protocol), so a new machine does not redo the run."""
    signature = spec.run_signature(p, name, files)
    compute = partial(train_and_select, spec, p, name, files, work)
    return cached_json(runs_dir(spec, p, work) / f"{name}.json", signature, compute)


def train_and_select(spec: Spec, p, name: str, files: dict, work: Path) -> dict:
    reference = spec.reference_data(p, work)
    base = base_probe(spec, p, work, files, reference)
    folder = work / "checkpoints" / name  # epoch<e> folders (the run's --out is replaced whole)
    started = time.time()
    trajectory = train_with_probes(spec, p, name, files, work, folder, reference)
    minutes = round((time.time() - started) / 60, 1)
    chosen = spec.choose(p, files, name, trajectory, base, folder, work, reference)
    shutil.rmtree(folder)  # 0.5 GB per epoch; the point's answers stay in eval/<run>.epoch<e>.json
    return {
        "name": name,
        "machine": machine(),
        "minutes": minutes,
        "command": run_command(spec, p, name, files),
        "trajectory": [{"epoch": 0, **base}, *trajectory],
        "chosen": chosen,
    }


def second_seed_runs(spec: Spec, p, work: Path) -> list[str]:
    """The second seeds of the families whose first-seed runs have all finished."""
    runs = finished_runs(runs_dir(spec, p, work), p.families, p.recipe())
    families = complete_families(p.families, p.runs, runs)
    return second_seeds(families, runs, spec.score, spec.higher_is_better)


# --------------------------------------------------------------------------- the queue


def schedule(graph: dict[str, tuple[str, ...]], start, workers: int, on_done=None) -> dict:
    """Run the tasks of ``graph`` (task -> the tasks it waits for) with ``workers`` at once,
    starting a ready task whenever a worker is free (no wave waits on its slowest task).
    ``start(task)`` returns a Popen-like object (``poll()``); ``on_done(task, code)`` may return
    more tasks (task -> what it waits for) to add. A failed task's dependants are skipped (exit
    code None). Returns each task's exit code."""
    graph = dict(graph)
    codes: dict[str, int | None] = {}
    running: dict[str, object] = {}
    waiting = list(graph)
    while waiting or running:
        for task, process in list(running.items()):
            if process.poll() is not None:
                codes[task] = process.poll()
                del running[task]
                added = on_done(task, codes[task]) if on_done else None
                for new, waits in (added or {}).items():
                    if new not in graph:
                        graph[new] = waits
                        waiting.append(new)
        skipped = True
        while skipped:  # a failed task's dependants, and theirs
            failed = {t for t, c in codes.items() if c != 0}
            skipped = [t for t in waiting if failed & set(graph[t])]
            for task in skipped:
                waiting.remove(task)
                codes[task] = None  # something it waits for failed
        ready = [t for t in waiting if all(codes.get(d) == 0 for d in graph[t])]
        for task in ready[: workers - len(running)]:
            waiting.remove(task)
            running[task] = start(task)
        if running:
            time.sleep(0.05 if all(hasattr(p, "fake") for p in running.values()) else 5)
        elif waiting:  # nothing runs and nothing can: a dependency cycle or missing task
            raise SystemExit(f"tasks that can never start: {waiting}")
    return codes


def protocol_graph(spec: Spec, p, work: Path) -> dict[str, tuple[str, ...]]:
    """Fine-tune the base models, evaluate each, then every first-seed run and the second seeds
    already known (the queue adds the others as their families complete). The fine-tuned model's
    evaluation waits inside its task for the reference model's (both may run at once)."""
    graph = {f"finetune:{m}": () for m in spec.base_models}
    graph |= {f"eval:{m}": (f"finetune:{m}",) for m in spec.base_models}
    evals = tuple(f"eval:{m}" for m in spec.base_models)
    runs = [*p.runs, *second_seed_runs(spec, p, work)]
    return graph | {f"run:{name}": evals for name in runs}


def run_queue(spec: Spec, p, work: Path, script: Path, extra: list[str], workers: int) -> None:
    """Every task of the protocol with ``workers`` one-thread processes (``script --task T``);
    raise if any failed (its log is in ``work/logs/T.log``)."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    evals = tuple(f"eval:{m}" for m in spec.base_models)

    def start(task: str):
        log_step(f"start {task}")
        with open(logs / f"{task}.log", "a") as log:
            command = [sys.executable, str(script), "--task", task, "--threads", "1", *extra]
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def on_done(task: str, code: int) -> dict:
        log_step(f"done {task} (exit {code})")
        if not task.startswith("run:") or code:
            return {}
        return {f"run:{name}": evals for name in second_seed_runs(spec, p, work)}

    codes = schedule(protocol_graph(spec, p, work), start, workers, on_done)
    failed = [task for task, code in codes.items() if code != 0]
    if failed:
        raise SystemExit(f"tasks failed or skipped: {', '.join(failed)} (see {logs})")


# --------------------------------------------------------------------------- the command line


def run_protocol(script: Path, spec: Spec, description: str) -> None:
    """A benchmark's command line: its work queue, then the report (``--report-only``: the
    report alone); ``--task`` runs one task (the queue's worker processes)."""
    import argparse
    import logging

    from report import write_report

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--work", help=f"cache folder (default: runs/{script.stem}...)")
    parser.add_argument("--workers", type=int, default=2, help="one-thread processes at once")
    parser.add_argument("--quick", action="store_true", help="smoke run of the whole pipeline")
    parser.add_argument("--report-only", action="store_true", help="rewrite the results only")
    parser.add_argument("--task", help="(internal) run one task in this process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of a task")
    names = spec.add_options(parser) if spec.add_options else []
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    options = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    # a quick run or other options never share (and overwrite) the full protocol's cache
    name = spec.work_name(**options)
    work = Path(args.work or f"runs/{name}" + ("_quick" if args.quick else "")).resolve()
    if args.task:
        run_task(spec, args.task, work, args.quick, args.threads, **options)
        return
    p, started = spec.protocol(args.quick, **options), time.time()
    log_estimate(spec, p, work, args.workers)
    extra = ["--work", str(work)] + (["--quick"] if args.quick else [])
    extra += [arg for n, v in options.items() for arg in ("--" + n.replace("_", "-"), str(v))]
    if not args.report_only:
        run_queue(spec, p, work, script, extra, args.workers)
    payload = write_report(spec, p, work, time.time() - started)
    print(json.dumps(payload["best_under_utility_floor"], indent=1))


def log_estimate(spec: Spec, p, work: Path, workers: int) -> None:
    runs = len(p.runs) + len(p.families)  # the second seeds included
    done = len(finished_runs(runs_dir(spec, p, work), p.families, p.recipe()))
    minutes = (2 * p.minutes_per_finetune + (runs - done) * p.minutes_per_run) / workers
    log_step(
        f"{done} of {runs} runs finished; estimate for the rest: about {minutes:.0f} min with"
        f" {workers} workers (fine-tuning included, even if cached); {machine()}"
    )
