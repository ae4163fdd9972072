"""The per-group tasks of efficacy v3 (tofu_groups.py): the group's data, the base models'
evaluations, and one unlearning run with its point and the forgetting measures at that point.

Each group works in ``work/groups/<authors>`` with links to the shared target and retain models
(``finetuned``, ``retain``), so v2's run machinery (engine.py, bench_tofu.py) reads it as a
TOFU-mini folder. The utility sets do not depend on the group: each base model is evaluated on
them once.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import tofu_eval
import tofu_pair
from bench_spec import FLOOR, run_command
from bench_tofu import SPEC, Protocol, spans_signature
from cache import cached_json, digest, parse_run, read_json, run_name, write_records
from common import RESULTS, machine
from engine import base_probe
from probes import train_with_probes
from tofu_group_measures import forgetting_measures
from tofu_groups import GroupsProtocol, base_data, finetune_signature

UTILITY_SETS = tofu_eval.UTILITY_SETS
# family -> (method, training spans, method options, learning rate); pre-registered
# (benchmarks/README.md); SimNPO's learning rate is chosen on the development group.
FAMILIES = {
    "tif-learned": ("tif", "learned", {}, 1e-4),
    "tif-graddiff": ("graddiff", "learned", {"targeted": True}, 1e-4),
    "ga": ("ga", "plain", {}, 1e-4),
    "graddiff": ("graddiff", "plain", {}, 1e-4),
    "npo": ("npo", "plain", {}, 1e-4),
    "idkdpo": ("idkdpo", "plain", {}, 1e-4),
    "simnpo": ("simnpo", "plain", {}, None),
}
TIF_FAMILY = ("tif-learned", "tif-graddiff")
QUICK_FAMILIES = ("tif-learned", "npo", "simnpo")  # --quick runs only these
SIMNPO_DEV_LRS = (1e-3, 3e-3)


def families(p: GroupsProtocol) -> dict[str, tuple]:
    return {k: v for k, v in FAMILIES.items() if not p.quick or k in QUICK_FAMILIES}


def run_of(p: GroupsProtocol, name: str, work: Path) -> str:
    """A task's run name: a family's pre-registered setting (SimNPO's from its development
    runs), or a run name as it is."""
    if name not in FAMILIES:
        return name
    lr = FAMILIES[name][3] if name != "simnpo" else simnpo_lr(p, work)
    return run_name(name, lr, 0)


def simnpo_lr(p: GroupsProtocol, work: Path) -> float:
    """The development run with the higher FQ under the floor (a run without a point counts as
    the fine-tuned model); a tie goes to the lower learning rate."""
    fqs = {}
    for lr in SIMNPO_DEV_LRS:
        run = read_json(
            runs_dir(p, work) / group_label(p.groups[0]) / f"{run_name('simnpo', lr, 0)}.json"
        )
        if run is None:
            raise SystemExit(f"SimNPO's development run at lr {lr:g} has not finished")
        fqs[lr] = point_fq(run["result"])
    return max(SIMNPO_DEV_LRS, key=lambda lr: (fqs[lr], -lr))


def point_fq(run: dict) -> float:
    """A run's FQ at its point; the fine-tuned model's on the group when it has none."""
    if run["chosen"] is not None:
        return run["chosen"]["forget_quality"]
    return run["trajectory"][0]["fq"]


def group_label(group: tuple[int, ...]) -> str:
    return tofu_pair.label(group)


def group_protocol(p: GroupsProtocol, group: tuple[int, ...], work: Path) -> Protocol:
    """v2's protocol on this group: full utility sets, one answer length for every group, the
    pre-registered families (their spans: ``learned``; ``gpt4o`` names the `phrases` spans here,
    which only the probes use)."""
    quick = {}
    if p.quick:
        quick = dict(epochs=2, grad_accum=2, probe_items=4, max_items=8, minutes_per_run=5.0)
    return replace(
        Protocol(**quick),
        retain_authors=p.retain_authors,
        forget_authors=group,
        annotations=str(phrases_file(group, work)),
        utility_items=8 if p.quick else None,
        families={name: spec[:3] for name, spec in families(p).items()},
        lrs=(1e-4,),
        generation_tokens=answer_tokens(p, work),
    )


def answer_tokens(p: GroupsProtocol, work: Path) -> int:
    """The shortest of v2's GENERATION_LENGTHS that truncates < 2 % of the references of the
    utility sets and of every group's forget set (their tokens + EOS), computed once."""
    import numpy as np

    from tif_unlearn.data.tofu import load_tofu_split
    from tif_unlearn.models import load_tokenizer

    def compute() -> dict:
        full = load_tofu_split("full")
        answers = [r["answer"] for g in p.groups for r in tofu_pair.forget_rows(full, g, 10)]
        answers += [r["answer"] for r in load_tofu_split("retain_perturbed")[:200]]  # 10 authors
        answers += [
            r["answer"]
            for s in ("real_authors", "world_facts")
            for r in load_tofu_split(f"{s}_perturbed")
        ]
        tokenizer = load_tokenizer("smollm2-135m")
        lengths = np.array(
            [len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers]
        )
        chosen, rate = tofu_eval.shortest_length(lengths)
        return {"tokens": chosen, "truncation_rate": rate, "answers": len(answers)}

    return cached_json(work / "eval" / "answer_tokens.json", p.recipe(), compute)["tokens"]


def group_work(work: Path, group: tuple[int, ...]) -> Path:
    """``work/groups/<authors>`` with links to the shared base models."""
    folder = work / "groups" / group_label(group)
    folder.mkdir(parents=True, exist_ok=True)
    for link, name in (("finetuned", "target"), ("retain", "retain")):
        if not (folder / link).is_symlink():
            (folder / link).symlink_to(work / name)
    return folder


def phrases_file(group: tuple[int, ...], work: Path) -> Path:
    """The group's forget answers annotated by `phrases` (rules, nothing fitted): the spans the
    forgetting measures use, no run's training spans."""
    from tif_unlearn.data.records import QARecord
    from tif_unlearn.data.tofu import load_tofu_split
    from tif_unlearn.identify import identify

    path = work / "groups" / group_label(group) / "data" / "forget.phrases.jsonl"
    if not path.is_file():
        rows = tofu_pair.forget_rows(load_tofu_split("full"), group, 10)
        records = [QARecord(r["question"], r["answer"]) for r in rows]
        write_records(identify("phrases", records, progress=False).annotated(), path)
    return path


def group_files(p: GroupsProtocol, group: tuple[int, ...], work: Path):
    """(group protocol, group folder, files): v2's data files of this group."""
    folder = group_work(work, group)
    gp = group_protocol(p, group, work)
    return gp, folder, tofu_pair.build_data(gp, folder)


# --------------------------------------------------------------------------- base models


def utility_eval(p: GroupsProtocol, name: str, work: Path) -> dict:
    """A base model's evaluation on the three utility sets (the same for every group)."""
    gp, _, files = group_files(p, p.groups[0], work)
    cache = work / "eval" / f"{name}.utility.json"
    return tofu_eval.full_eval(gp, files, work / name, cache, UTILITY_SETS)


def forget_eval(gp, files: dict, model: Path, cache: Path) -> dict:
    return tofu_eval.full_eval(gp, files, model, cache, ("forget",))


def merged(utility: dict, forget: dict) -> dict:
    """One evaluation from the utility sets' and the forget set's: every set, the MIA and a
    summary with Model Utility, in the form tofu_eval.headline reads."""
    from tif_unlearn.evaluate.tofu_logs import model_utility_of

    sets = {**utility["sets"], **forget["sets"]}
    summary = {k: v for s in sets.values() for k, v in s["aggregate"].items()}
    summary["model_utility"] = model_utility_of(summary)
    return {"sets": sets, "mia": forget["mia"], "summary": summary, **_rate(utility, forget)}


def _rate(*results: dict) -> dict:
    rates = [r.get("truncation_rate") for r in results if r.get("truncation_rate") is not None]
    return {"truncation_rate": max(rates)} if rates else {}


def floor_mu(p: GroupsProtocol, work: Path) -> float:
    """0.95 × the lower Model Utility of the target and the retain model (pre-registered)."""
    mus = [tofu_eval.model_utility(utility_eval(p, name, work)) for name in ("target", "retain")]
    return FLOOR * min(mus)


def evaluate_group(p: GroupsProtocol, group: tuple[int, ...], work: Path) -> None:
    """The retain and target models on this group: merged evaluations in the group folder's
    ``eval/retain.json`` and ``eval/finetuned.json`` (where v2's run code reads them), and the
    target's epoch-0 probe."""
    gp, folder, files = group_files(p, group, work)
    for link, name in (("retain", "retain"), ("finetuned", "target")):
        forget = forget_eval(gp, files, work / name, folder / "eval" / f"{link}.forget.json")
        utility = utility_eval(p, name, work)
        signature = {"parts": digest(json.dumps([utility, forget], sort_keys=True))}
        cached_json(folder / "eval" / f"{link}.json", signature, partial(merged, utility, forget))
    base_probe(SPEC, gp, folder, files, tofu_eval.retain_reference(gp, folder, 0))


# --------------------------------------------------------------------------- one run


def run_signature(p: GroupsProtocol, gp, name: str, files: dict, work: Path) -> dict:
    family, lr, seed = parse_run(name)
    base = base_data(p, work)
    return {
        "protocol": p.recipe(),
        "recipe": gp.recipe(),
        "family": list(gp.families[family]),
        "lr": lr,
        "seed": seed,
        "target": finetune_signature(p, "target", base),
        "retain_model": finetune_signature(p, "retain", base),
        **spans_signature(gp, family, files),
        "phrases": digest(Path(gp.annotations).read_text(encoding="utf-8")),
    }


def runs_dir(p: GroupsProtocol, work: Path) -> Path:
    """Committed run files for the full protocol at the default seed, else under ``work``."""
    if p == GroupsProtocol():
        return RESULTS / "tofu_groups_runs"
    return work / "runs"


def unlearning_run(p: GroupsProtocol, group: tuple[int, ...], name: str, work: Path) -> dict:
    gp, folder, files = group_files(p, group, work)
    signature = run_signature(p, gp, name, files, work)
    path = runs_dir(p, work) / group_label(group) / f"{name}.json"
    return cached_json(path, signature, lambda: train_and_measure(p, gp, name, files, folder, work))


def train_and_measure(p: GroupsProtocol, gp, name: str, files: dict, folder: Path, work: Path):
    """v2's run (probes at every epoch, the FQ walk under the floor), then the forgetting
    measures at the chosen point; the checkpoints are deleted at the end."""
    reference = tofu_eval.retain_reference(gp, folder, 0)
    base = base_probe(SPEC, gp, folder, files, reference)
    checkpoints = folder / "checkpoints" / name
    started = time.time()
    trajectory = train_with_probes(SPEC, gp, name, files, folder, checkpoints, reference)
    minutes = round((time.time() - started) / 60, 1)
    floor = floor_mu(p, work)
    chosen = tofu_eval.choose_point(
        gp, files, name, trajectory, floor, checkpoints, folder, reference
    )
    epoch_model = checkpoints / f"epoch{chosen['epoch']}" if chosen else folder / "finetuned"
    uw_cache = folder / "eval" / f"{name}.uw.json"
    measures = forgetting_measures(gp.annotations, files["learned"], epoch_model, uw_cache)
    shutil.rmtree(checkpoints)
    return {
        "name": name,
        "machine": machine(),
        "precision": "float32",
        "minutes": minutes,
        "floor_mu": floor,
        "command": run_command(SPEC, gp, name, files),
        "trajectory": [{"epoch": 0, **base}, *trajectory],
        "chosen": chosen,
        "point_truth_ratios": point_truth_ratios(chosen, name, folder),
        "measures": measures,
    }


def point_truth_ratios(chosen: dict | None, name: str, folder: Path) -> list[float]:
    """The forget items' truth ratios at the point (the fine-tuned model's without one)."""
    cache = (
        folder / "eval" / (f"{name}.epoch{chosen['epoch']}.json" if chosen else "finetuned.json")
    )
    results = read_json(cache)["result"]
    return [item["truth_ratio"] for item in results["sets"]["forget"]["items"]]
