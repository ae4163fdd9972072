"""Protocol v2 helpers shared by the TOFU-mini and MUSE-mini benchmarks: evaluate a run at the
end of every epoch (a trajectory, not a single point), pick the best checkpoint under a utility
floor, the Pareto frontier, and a small scheduler that runs independent tasks as one-thread
subprocesses side by side (two per 2-core machine).
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from common import log_step, png_bytes
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
    """``points`` whose ``utility`` ≥ ``floor``, best ``score`` first; ties (KS p-values on
    40 items are discrete) go to the higher utility."""
    kept = [p for p in points if p[utility] is not None and p[utility] >= floor]
    sign = 1 if higher_is_better else -1
    return sorted(kept, key=lambda p: (sign * p[score], p[utility]), reverse=True)


def walk_order(trajectory: list[dict], score: str, proxy: str) -> list[dict]:
    """The order in which a run's epochs get a full evaluation until one keeps the full utility
    floor: best ``score`` first, so the first that keeps it is the best point under the floor
    (exactly, when the probe's score is the full evaluation's, as TOFU's Forget Quality is);
    ties (KS p-values on 40 items are discrete) go to the higher ``proxy`` utility first. The
    proxy only orders ties: it once kept epochs whose full utility had fallen (answer
    probabilities miss a drop in generation ROUGE) and dropped epochs that kept it."""
    return sorted(trajectory, key=lambda point: (point[score], point[proxy]), reverse=True)


def pareto_frontier(points: dict[str, tuple[float, float]], x_higher: bool) -> list[str]:
    """Names of the points no other point beats on both axes (y: higher is better; x: higher
    when ``x_higher``, else lower)."""

    def beats(a, b):
        ax, bx = (a[0], b[0]) if x_higher else (-a[0], -b[0])
        return ax >= bx and a[1] >= b[1] and (ax > bx or a[1] > b[1])

    return [n for n, p in points.items() if not any(beats(q, p) for q in points.values())]


def verdict(summary: dict, frontier: list[str], score: str, higher_is_better: bool) -> dict:
    """Issue 13's question, from the families' points under the utility floor: does a member of
    the TIF family (``tif``, ``tif-*``) lie on the Pareto frontier with a better ``score`` than
    every baseline's best point? ``winners`` names those that do."""
    points = {family: s[score] for family, s in summary.items() if s}
    sign = 1 if higher_is_better else -1

    def best(targeted: bool) -> str | None:
        names = [f for f in points if is_targeted(f) == targeted]
        return max(names, key=lambda f: sign * points[f], default=None)

    baseline = best(targeted=False)
    winners = [
        f
        for f in points
        if is_targeted(f)
        and f in frontier
        and (baseline is None or sign * points[f] > sign * points[baseline])
    ]
    return {
        "tif_family_wins": bool(winners),
        "winners": winners,
        "best_tif_family": best(targeted=True),
        "best_baseline": baseline,
        "families_without_a_point": [f for f, s in summary.items() if not s],
    }


def verdict_line(v: dict) -> str:
    """The verdict in one sentence (the first line of a results table)."""
    if v["tif_family_wins"]:
        return (
            f"Verdict: the TIF family wins: {', '.join(v['winners'])} on the Pareto frontier, "
            f"ahead of every baseline's best point under the floor (best baseline: "
            f"{v['best_baseline']})."
        )
    return (
        "Verdict: no TIF-family setting is on the Pareto frontier ahead of every baseline "
        f"(best TIF family: {v['best_tif_family']}; best baseline: {v['best_baseline']})."
    )


def is_targeted(family: str) -> bool:
    return family == "tif" or family.startswith("tif-")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_digest(folder: Path) -> str:
    """A model folder's identity: its run record, or (an epoch checkpoint) its weights."""
    record = folder / "tif_run.json"
    if record.is_file():
        return digest(record.read_text())
    sha = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as weights:
        for block in iter(lambda: weights.read(1 << 24), b""):
            sha.update(block)
    return sha.hexdigest()[:16]


def token_group_probs(model, tokenizer, annotated: Path, max_items: int | None = None) -> dict:
    """Mean probability of the UW tokens and of the GW tokens of annotated records, pooled
    over all their tokens (the trajectory diagnostics: does a method lower the unwanted words,
    or everything?)."""
    import numpy as np

    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.evaluate.qa_scoring import target_masks
    from tif_unlearn.evaluate.scoring import score_records

    records = load_records(annotated)[:max_items]
    scored = score_records(model, tokenizer, records, desc="UW/GW probabilities")
    uw, gw = [], []
    for record, answer in zip(records, scored, strict=True):
        uw_flags, _ = target_masks(tokenizer, record, max_length=512)
        for is_uw, logp in zip(uw_flags, answer.token_logps, strict=True):
            (uw if is_uw else gw).append(float(np.exp(logp)))
    return {"uw_prob": float(np.mean(uw)), "gw_prob": float(np.mean(gw))}


def write_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)``, then ``tmp`` renamed to ``path``: the tasks running side by side rewrite
    the same data files, and a reader must never see one half-written."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    tmp.replace(path)
    return path


def write_records(records, path: Path) -> Path:
    """``write_annotated``, atomically (:func:`write_atomically`)."""
    from tif_unlearn.data.annotations import write_annotated

    return write_atomically(path, partial(write_annotated, records))


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


def cached_probe(work: Path, run: str, checkpoint: Path, recipe: dict, compute: Callable[[], dict]):
    """A checkpoint's probe numbers (``work/probe/<run>.<checkpoint>.json``), computed once per
    weights: a run restarted after an interruption trains again (fixed seeds reproduce the
    weights) but probes only new epochs."""
    cache = work / "probe" / f"{run}.{checkpoint.name}.json"
    return cached_json(cache, {"model": model_digest(checkpoint), "recipe": recipe}, compute)


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


# --------------------------------------------------------------------------- sweeps


def run_name(family: str, lr: float, seed: int) -> str:
    """``tif_lr1e-04`` (seed 0) or ``tif_lr1e-04_seed1``."""
    return f"{family}_lr{lr:.0e}" + (f"_seed{seed}" if seed else "")


def parse_run(name: str) -> tuple[str, float, int]:
    seed = int(name.rsplit("_seed", 1)[1]) if "_seed" in name else 0
    family, lr = name.split("_seed")[0].rsplit("_lr", 1)
    return family, float(lr), seed


def finished_runs(runs_dir: Path, families, recipe: dict) -> dict[str, dict]:
    """The cached results of the runs of ``families`` made with ``recipe``."""
    runs, recipe = {}, json.loads(json.dumps(recipe))  # as stored: tuples become lists
    for path in sorted(runs_dir.glob("*.json")):
        saved = read_json(path)
        if parse_run(path.stem)[0] in families and saved["signature"]["recipe"] == recipe:
            runs[path.stem] = saved["result"]
    return runs


def best_setting(family: str, runs: dict, score: str, higher_is_better: bool) -> str | None:
    """The seed-0 run of ``family`` with the best ``score`` at its chosen point (None: no run
    kept the utility floor)."""
    chosen = {
        name: run["chosen"]
        for name, run in runs.items()
        if parse_run(name)[0] == family and parse_run(name)[2] == 0 and run["chosen"]
    }
    if not chosen:
        return None
    pick = max if higher_is_better else min
    return pick(chosen, key=lambda n: chosen[n][score])


def complete_families(families, first_runs, runs: dict) -> list[str]:
    """The ``families`` whose every first-seed run (the names in ``first_runs``) is in ``runs``:
    their best setting is known, so their second seed may start."""
    return [f for f in families if all(n in runs for n in first_runs if parse_run(n)[0] == f)]


def second_seeds(families, runs: dict, score: str, higher_is_better: bool) -> list[str]:
    """Seed-1 runs of every family's best setting."""
    best = [best_setting(family, runs, score, higher_is_better) for family in families]
    return [name + "_seed1" for name in best if name]


def family_summary(
    families, runs: dict, keys: dict[str, str], higher_is_better: bool, fallback: dict
) -> dict:
    """Per family: the mean over both seeds of its best setting's chosen point. ``keys`` maps
    summary names to result keys, the first being the score (e.g. {"fq": "forget_quality",
    "mu": "model_utility"}). A seed with no checkpoint above the floor counts as the fine-tuned
    model (``fallback``: its results, epoch 0), never left out of the mean."""
    score = next(iter(keys.values()))
    summary = {}
    for family in families:
        best = best_setting(family, runs, score, higher_is_better)
        if best is None:
            summary[family] = None
            continue
        names = [n for n in (best, best + "_seed1") if n in runs]
        seeds = [seed_point(runs[n], keys, fallback) for n in names]
        summary[family] = {
            **{k: float(sum(s[k] for s in seeds) / len(seeds)) for k in keys},
            "epoch": runs[best]["chosen"]["epoch"],
            "setting": f"lr={parse_run(best)[1]:g}",
            "run": best,
            "seeds": seeds,
        }
    return summary


def seed_point(run: dict, keys: dict[str, str], fallback: dict) -> dict:
    """A seed's point; the fine-tuned model's (epoch 0) when none kept the floor."""
    chosen = run["chosen"] or {**fallback, "epoch": 0}
    return {**{k: chosen.get(v) for k, v in keys.items()}, "epoch": chosen.get("epoch")}


def command_line(command: str, fields: dict, out: str) -> str:
    """The ``tif`` command equivalent to a config's ``fields``."""
    flags = []
    for key, value in fields.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag} {value}")
    return f"tif {command} " + " ".join(flags) + f" --out {out}"


MARKERS = "os^Dv<>PX*hpd"


def family_styles(families) -> dict[str, tuple[int, str]]:
    """A tab20 colour index and a marker shape per family, no two families alike: the ten
    strong tab20 colours first, then their light twins."""
    return {
        family: ((2 * i) % 20 + (2 * i) // 20 % 2, MARKERS[i % len(MARKERS)])
        for i, family in enumerate(families)
    }


def trajectories_png(
    payload: dict, axes: tuple[str, str, bool], labels, summary_keys, floor: float | None = None
) -> bytes:
    """Left: every run's per-epoch trajectory (``axes`` = (x key, y key, x on a log scale)),
    solid for the TIF family, dashed for the baselines, with each family's summary point
    (``summary_keys`` = its x and y names) as a large marker (a colour and a shape per family)
    and the utility ``floor`` of those points as a dotted line. Right: the mean UW- against
    GW-token probability of the forget set along the same epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key, y_key, log_x = axes
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5), dpi=100)
    families = list(payload["best_under_utility_floor"])
    styles = family_styles(families)
    colors = {f: plt.cm.tab20(index) for f, (index, _) in styles.items()}
    for name, run in payload["runs"].items():
        family, steps = parse_run(name)[0], run["trajectory"]
        style = {"ls": "-" if is_targeted(family) else "--", "color": colors[family]}
        xs = [max(t[x_key], 1e-12) if log_x else t[x_key] for t in steps]
        left.plot(xs, [t[y_key] for t in steps], marker=".", lw=1, alpha=0.6, **style)
        uw, gw = [t["uw_prob"] for t in steps], [t["gw_prob"] for t in steps]
        right.plot(uw, gw, marker=".", lw=1, alpha=0.6, **style)
    for family, point in payload["best_under_utility_floor"].items():
        if point:
            x, y = (point[k] for k in summary_keys)
            x = max(x, 1e-12) if log_x else x
            shape = styles[family][1]
            left.scatter([x], [y], s=90, color=colors[family], marker=shape, edgecolor="black",
                         label=family)  # fmt: skip
    if floor is not None:
        left.axhline(floor, color="gray", ls=":", lw=1, label="utility floor (markers)")
    if log_x:
        left.set_xscale("log")
    left.set_xlabel(labels[0])
    left.set_ylabel(labels[1])
    left.set_title("Pareto frontier: " + ", ".join(payload["pareto_frontier"]), fontsize=9)
    left.legend(fontsize=7)
    right.set_xlabel("mean UW-token probability (forget set)")
    right.set_ylabel("mean GW-token probability (forget set)")
    right.set_title("What each method lowers, epoch by epoch", fontsize=9)
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
    return png_bytes(fig)


def run_protocol(script: Path, tasks, description: str) -> None:
    """The command line of a protocol-v2 benchmark: ``tasks`` is its module (``protocol``,
    ``run_task``, ``second_seed_runs``, ``write_report``, ``BASE_MODELS``, and optionally
    ``add_options``: its own options, passed on to ``protocol``, ``run_task`` and every task).
    Waves: fine-tune the base models, evaluate them, every first-seed run (then the second seeds
    of the families already complete, so no worker waits on the wave's last run), the other
    second seeds, the report."""
    import argparse
    import logging

    from common import machine

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--work", help=f"cache folder (default: runs/{script.stem}...)")
    parser.add_argument("--workers", type=int, default=2, help="one-thread processes at once")
    parser.add_argument("--quick", action="store_true", help="smoke run of the whole pipeline")
    parser.add_argument("--report-only", action="store_true", help="rewrite the results only")
    parser.add_argument("--task", help="(internal) run one task in this process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of a task")
    names = tasks.add_options(parser) if hasattr(tasks, "add_options") else []
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    options = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    # a quick run or other options never share (and overwrite) the full protocol's cache
    name = tasks.work_name(**options) if hasattr(tasks, "work_name") else script.stem
    work = Path(args.work or f"runs/{name}" + ("_quick" if args.quick else "")).resolve()
    if args.task:
        tasks.run_task(args.task, work, args.quick, args.threads, **options)
        return
    p, started = tasks.protocol(args.quick, **options), time.time()
    runs = len(p.runs) + len(p.families)  # the second seeds included
    done = len(finished_runs(tasks.runs_dir(p, work), p.families, p.recipe()))
    minutes = (2 * p.minutes_per_finetune + (runs - done) * p.minutes_per_run) / args.workers
    log_step(
        f"{done} of {runs} runs finished; estimate for the rest: about {minutes:.0f} min with"
        f" {args.workers} workers (fine-tuning included, even if cached); {machine()}"
    )
    extra, logs = ["--work", str(work)] + (["--quick"] if args.quick else []), work / "logs"
    extra += [arg for n, v in options.items() for arg in ("--" + n.replace("_", "-"), str(v))]
    if not args.report_only:
        base = list(tasks.BASE_MODELS)
        run_wave(script, [f"finetune:{m}" for m in base], args.workers, extra, logs)
        run_wave(script, [f"eval:{m}" for m in base], args.workers, extra, logs)
        ready = tasks.second_seed_runs(p, work)  # families whose settings have all run
        first = [f"run:{name}" for name in [*p.runs, *ready]]
        run_wave(script, first, args.workers, extra, logs)
        seeds = tasks.second_seed_runs(p, work)  # all (those run above are cached)
        run_wave(script, [f"run:{name}" for name in seeds], args.workers, extra, logs)
    payload = tasks.write_report(p, work, time.time() - started)
    print(json.dumps(payload["best_under_utility_floor"], indent=1))
