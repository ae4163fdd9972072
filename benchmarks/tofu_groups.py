"""Efficacy v3 on TOFU: held-out author groups (the pre-registration is in benchmarks/README.md).

One target model fine-tuned on the retain authors plus every group, one retain model fine-tuned
on the retain authors alone with the same number of optimizer steps; each group is then
unlearned separately from the same target and scored against the same retain model.

This file draws the groups, writes the fine-tuning data and fine-tunes the two base models
(cached under ``--work``). Usage:
    python benchmarks/tofu_groups.py --task finetune:target [--groups-seed 0] [--work DIR]
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tofu_pair
from cache import digest, write_records
from common import cached_step, machine
from engine import schedule

from tif_unlearn.data.records import QARecord
from tif_unlearn.data.tofu import load_tofu_split

# authors with TOFU's perturbed answers (FQ needs them), less the retain authors 0-9 and the
# development group
DEV_GROUP = tofu_pair.DEFAULT_AUTHORS  # forget01's 198, 199: where v2 chose every setting
POOL = tuple(a for a in (*range(10, 20), *range(180, 200)) if a not in DEV_GROUP)
QA_PER_AUTHOR = tofu_pair.QA_PER_AUTHOR
BASE_MODELS = ("retain", "target")


@dataclass(frozen=True)
class GroupsProtocol:
    groups_seed: int = 0
    test_groups: int = 5
    retain_authors: int = 10
    finetune_epochs: float = 5.0  # the target's; the retain model gets as many steps
    finetune_lr: float = 2e-4
    finetune_warmup_epochs: float = 0.5  # of the target's epochs
    batch_size: int = 4
    quick: bool = False  # a smoke run of the whole pipeline (tiny sets, few steps)

    @property
    def groups(self) -> list[tuple[int, ...]]:
        """The development group first, then the test groups."""
        return [DEV_GROUP, *draw_groups(self.groups_seed, self.test_groups)]

    def recipe(self) -> dict:
        return {**asdict(self), "groups": [list(g) for g in self.groups]}


def make_protocol(seed: int, quick: bool) -> GroupsProtocol:
    if not quick:
        return GroupsProtocol(groups_seed=seed)
    return GroupsProtocol(
        groups_seed=seed, test_groups=1, retain_authors=2, finetune_epochs=0.2, quick=True
    )


def draw_groups(seed: int, count: int) -> list[tuple[int, int]]:
    """``count`` pairs of authors from POOL, drawn without replacement by ``seed``."""
    if 2 * count > len(POOL):
        raise SystemExit(f"at most {len(POOL) // 2} test groups: the pool has {len(POOL)} authors")
    chosen = np.random.default_rng(seed).choice(POOL, size=2 * count, replace=False)
    return [tuple(sorted(int(a) for a in chosen[i : i + 2])) for i in range(0, 2 * count, 2)]


def base_rows(p: GroupsProtocol) -> dict[str, list[dict]]:
    """The fine-tuning rows: ``retain`` (authors 0..retain_authors-1) and ``target`` (those
    plus every group's rows, group by group)."""
    full = load_tofu_split("full")
    retain = full[: p.retain_authors * QA_PER_AUTHOR]
    groups = [tofu_pair.forget_rows(full, g, p.retain_authors) for g in p.groups]
    return {"retain": retain, "target": retain + [row for rows in groups for row in rows]}


def base_data(p: GroupsProtocol, work: Path) -> dict[str, Path]:
    files = {}
    for name, rows in base_rows(p).items():
        files[name] = work / "data" / f"finetune.{name}.jsonl"
        write_records([QARecord(r["question"], r["answer"]) for r in rows], files[name])
    return files


def finetune_fields(p: GroupsProtocol, name: str, files: dict[str, Path]) -> dict:
    """``tif finetune``'s config fields: the retain model gets the target's number of optimizer
    steps and warm-up steps (its epochs scaled by the data sizes)."""
    sizes = {k: sum(1 for _ in path.open(encoding="utf-8")) for k, path in files.items()}
    scale = sizes["target"] / sizes[name]
    return {
        "model": "smollm2-135m",
        "data": str(files[name]),
        "epochs": p.finetune_epochs * scale,
        "warmup_epochs": p.finetune_warmup_epochs * scale,
        "lr": p.finetune_lr,
        "batch_size": p.batch_size,
        "dtype": "float32",  # the same precision on every machine the protocol resumes on
    }


def finetune_signature(p: GroupsProtocol, name: str, files: dict[str, Path]) -> dict:
    fields = finetune_fields(p, name, files)
    return {
        "data": digest(files[name].read_text(encoding="utf-8")),
        "fields": fields | {"data": ""},
    }


def finetune(p: GroupsProtocol, name: str, work: Path) -> Path:
    from tif_unlearn.config import FinetuneConfig
    from tif_unlearn.train import run_finetune

    files = base_data(p, work)
    fields = finetune_fields(p, name, files)
    config = FinetuneConfig(out=str(work / name), overwrite=True, **fields)
    label = f"fine-tuning {name} on {files[name].name} ({fields['epochs']:g} epochs)"
    signature = finetune_signature(p, name, files)
    return cached_step(work / name, signature, label, lambda: run_finetune(config))


def task_graph(p: GroupsProtocol) -> dict[str, tuple[str, ...]]:
    """Every task -> the tasks it waits for, in the order they are started: the base models,
    SimNPO's two development runs, then the test groups' runs group by group (SimNPO's test runs
    wait for its development runs, which decide its learning rate)."""
    from cache import run_name
    from tofu_group_tasks import SIMNPO_DEV_LRS, families, group_label

    graph = {f"finetune:{m}": () for m in BASE_MODELS}
    graph |= {f"eval:utility:{m}": (f"finetune:{m}",) for m in BASE_MODELS}
    utility = tuple(f"eval:utility:{m}" for m in BASE_MODELS)
    labels = [group_label(g) for g in p.groups]
    graph |= {f"eval:group:{label}": utility for label in labels}
    dev = tuple(f"run:{labels[0]}:{run_name('simnpo', lr, 0)}" for lr in SIMNPO_DEV_LRS)
    graph |= {task: (f"eval:group:{labels[0]}",) for task in dev}
    for label in labels[1:]:
        for family in families(p):
            waits = (f"eval:group:{label}",) + (dev if family == "simnpo" else ())
            graph[f"run:{label}:{family}"] = waits
    return graph


def run_task(p: GroupsProtocol, task: str, work: Path) -> None:
    import tofu_group_tasks as tasks

    kind, _, rest = task.partition(":")
    if kind == "finetune":
        finetune(p, rest, work)
    elif task.startswith("eval:utility:"):
        tasks.utility_eval(p, rest.partition(":")[2], work)
    elif task.startswith("eval:group:"):
        tasks.evaluate_group(p, group_of(p, rest.partition(":")[2]), work)
    elif kind == "run":
        label, _, name = rest.partition(":")
        tasks.unlearning_run(p, group_of(p, label), tasks.run_of(p, name, work), work)
    else:
        raise SystemExit(f"unknown task {task!r}")


def group_of(p: GroupsProtocol, label: str) -> tuple[int, ...]:
    from tofu_group_tasks import group_label

    groups = {group_label(g): g for g in p.groups}
    if label not in groups:
        raise SystemExit(f"no group {label!r} in this protocol: {sorted(groups)}")
    return groups[label]


def main() -> None:
    import subprocess
    import sys

    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups-seed", type=int, default=0)
    parser.add_argument("--work", help="cache folder (default: runs/tofu_groups_seed<N>)")
    parser.add_argument("--workers", type=int, default=2, help="one-thread processes at once")
    parser.add_argument("--quick", action="store_true", help="smoke run of the whole pipeline")
    parser.add_argument("--report-only", action="store_true", help="rewrite the results only")
    parser.add_argument("--task", help="(internal) run one task in this process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of a task")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    p = make_protocol(args.groups_seed, args.quick)
    name = f"tofu_groups_seed{args.groups_seed}" + ("_quick" if args.quick else "")
    work = Path(args.work or f"runs/{name}").resolve()
    if args.task:
        return run_task(p, args.task, work)
    print(f"groups (development first): {p.groups}; {machine()}", flush=True)
    if not args.report_only:
        graph = task_graph(p)
        print(f"{len(graph)} tasks; {estimate(p, work, graph, args.workers)}", flush=True)
        logs = work / "logs"
        logs.mkdir(parents=True, exist_ok=True)

        def start(task: str):
            command = [sys.executable, __file__, "--task", task, "--work", str(work)]
            command += ["--groups-seed", str(args.groups_seed)] + ["--quick"] * args.quick
            log = (logs / f"{task.replace(':', '_')}.log").open("a")
            print(f"started {task}", flush=True)
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

        codes = schedule(graph, start, args.workers)
        failed = {t: c for t, c in codes.items() if c != 0}
        print(f"failed or skipped: {failed}" if failed else "every task finished", flush=True)
    from tofu_groups_report import write_report

    write_report(p, work)


def estimate(p: GroupsProtocol, work: Path, graph: dict, workers: int) -> str:
    """Minutes left with ``workers``: 80 min a fine-tune, 15 an evaluation, 70 a run, for the
    tasks without a finished result (measured on the first runs; an estimate only)."""
    from tofu_group_tasks import runs_dir

    done = {p.stem for p in runs_dir(p, work).glob("*/*.json")}
    minutes = {"finetune": 80, "eval": 15, "run": 70}
    left = [t for t in graph if not (t.startswith("run:") and t.rpartition(":")[2] in done)]
    total = sum(minutes[t.partition(":")[0]] for t in left)
    return (
        f"about {total / workers / 60:.1f} h left with {workers} workers (cached steps are quick)"
    )


if __name__ == "__main__":
    main()
