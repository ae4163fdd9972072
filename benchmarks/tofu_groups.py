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
from common import cached_step, machine
from trajectory import digest, write_records

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

    @property
    def groups(self) -> list[tuple[int, ...]]:
        """The development group first, then the test groups."""
        return [DEV_GROUP, *draw_groups(self.groups_seed, self.test_groups)]

    def recipe(self) -> dict:
        return {**asdict(self), "groups": [list(g) for g in self.groups]}


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


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups-seed", type=int, default=0)
    parser.add_argument("--work", help="cache folder (default: runs/tofu_groups_seed<N>)")
    parser.add_argument("--task", required=True, help="finetune:target or finetune:retain")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    p = GroupsProtocol(groups_seed=args.groups_seed)
    work = Path(args.work or f"runs/tofu_groups_seed{args.groups_seed}").resolve()
    print(f"groups (development first): {p.groups}; {machine()}", flush=True)
    kind, _, name = args.task.partition(":")
    if kind != "finetune" or name not in BASE_MODELS:
        raise SystemExit(f"unknown task {args.task!r}")
    finetune(p, name, work)


if __name__ == "__main__":
    main()
