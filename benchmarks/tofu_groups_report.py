"""Efficacy v3's pre-registered statistic and verdict (benchmarks/README.md), and its report.

Per test group g: TIF_g = the higher FQ of the TIF family's points, BASE_g = the highest of the
baselines' (a run without a point under the floor counts as the fine-tuned model),
d_g = log10 TIF_g − log10 BASE_g, D = mean over the test groups. 95 % CI: a two-level percentile
bootstrap (groups, then each drawn group's forget items, the same indices for every point and
the retain model; chosen epochs fixed). Verdict: wins if the CI is above 0, loses if below,
else a tie.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DRAWS = 2000
SEED = 0


@dataclass
class GroupPoints:
    """One test group: the retain model's forget truth ratios and, per family, its point's."""

    label: str
    reference: np.ndarray
    tif: dict[str, np.ndarray]
    base: dict[str, np.ndarray]


def fq(ratios: np.ndarray, reference: np.ndarray) -> float:
    from tif_unlearn.evaluate import metrics

    return float(metrics.forget_quality(ratios, reference).pvalue)


def difference(group: GroupPoints, index: np.ndarray | None = None) -> float:
    """d_g on the forget items ``index`` (all of them by default)."""
    index = np.arange(len(group.reference)) if index is None else index
    reference = group.reference[index]
    best_tif = max(fq(r[index], reference) for r in group.tif.values())
    best_base = max(fq(r[index], reference) for r in group.base.values())
    return float(np.log10(best_tif) - np.log10(best_base))


def bootstrap(groups: list[GroupPoints], draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """D on ``draws`` two-level resamples: groups with replacement, then items within each."""
    rng = np.random.default_rng(seed)
    out = np.empty(draws)
    for b in range(draws):
        picked = rng.integers(0, len(groups), len(groups))
        values = []
        for g in picked:
            n = len(groups[g].reference)
            values.append(difference(groups[g], rng.integers(0, n, n)))
        out[b] = np.mean(values)
    return out


def verdict(low: float, high: float) -> str:
    if low > 0:
        return "the TIF family wins (the CI of D is above 0)"
    if high < 0:
        return "the baselines win (the CI of D is below 0)"
    return "a tie: the CI of D includes 0"


def statistic(groups: list[GroupPoints], draws: int = DRAWS, seed: int = SEED) -> dict:
    """The pre-registered numbers: d_g per group, D, its 95 % CI, the verdict, the sign count."""
    d = {g.label: difference(g) for g in groups}
    samples = bootstrap(groups, draws, seed)
    low, high = (float(q) for q in np.quantile(samples, [0.025, 0.975]))
    return {
        "d": d,
        "D": float(np.mean(list(d.values()))),
        "ci95": [low, high],
        "verdict": verdict(low, high),
        "groups_tif_ahead": sum(v > 0 for v in d.values()),
        "groups": len(d),
        "draws": draws,
        "seed": seed,
    }


# --------------------------------------------------------------------------- reading the runs


def group_points(p, group, work: Path) -> tuple[GroupPoints, dict] | None:
    """A test group's points (None until every family has run) and its table rows."""
    from cache import read_json
    from tofu_group_tasks import TIF_FAMILY, families, group_label, run_of, runs_dir

    label = group_label(group)
    retain = read_json(work / "groups" / label / "eval" / "retain.json")
    runs = {}
    for family in families(p):
        path = runs_dir(p, work) / label / f"{run_of(p, family, work)}.json"
        saved = read_json(path)
        if saved is None or retain is None:
            return None
        runs[family] = saved["result"]
        if runs[family].get("precision") != "float32":  # greedy answers differ across precisions
            raise SystemExit(f"{path} was not run in float32: the report does not mix precisions")
    ratios = {f: np.array(r["point_truth_ratios"]) for f, r in runs.items()}
    reference = np.array([i["truth_ratio"] for i in retain["result"]["sets"]["forget"]["items"]])
    points = GroupPoints(
        label,
        reference,
        {f: r for f, r in ratios.items() if f in TIF_FAMILY},
        {f: r for f, r in ratios.items() if f not in TIF_FAMILY},
    )
    rows = {f: row(r, ratios[f], reference) for f, r in runs.items()}
    return points, rows


def row(run: dict, ratios: np.ndarray, reference: np.ndarray) -> dict:
    chosen = run["chosen"]
    audit = run["measures"]["phrases"]["forget"]["summary"]["model"]  # tif eval qa's summary
    return {
        "run": run["name"],
        "epoch": chosen["epoch"] if chosen else None,
        "fq": fq(ratios, reference),
        "mu": chosen["model_utility"] if chosen else None,
        "privleak": chosen["privleak"] if chosen else None,
        "forget_rouge": chosen["forget_rouge"] if chosen else None,
        "phrases_audit": audit,
        "learned_token_probs": run["measures"]["learned_token_probs"],
    }


def base_models(work: Path, draws: int = 1000) -> dict:
    """The target's and the retain model's Model Utility and its item-bootstrap SD (the items
    of each utility set resampled, the same draw for both models)."""
    from cache import read_json
    from tofu_noise import eval_sets, utility

    sets = {m: eval_sets(read_json(work / "eval" / f"{m}.utility.json")["result"]) for m in BASE}
    sizes = {n: len(s.avg_gt_loss) for n, s in sets["target"].items()}
    rng = np.random.default_rng(SEED)
    samples = {m: [] for m in BASE}
    for _ in range(draws):
        draw = {n: rng.integers(0, k, k) for n, k in sizes.items()}
        for m in BASE:
            samples[m].append(utility(sets[m], draw))
    full = {n: np.arange(k) for n, k in sizes.items()}
    return {
        m: {"mu": utility(sets[m], full), "mu_bootstrap_sd": float(np.std(samples[m]))}
        for m in BASE
    }


BASE = ("target", "retain")


def write_report(p, work: Path) -> dict | None:
    from common import RESULTS, machine, write_results
    from tofu_group_tasks import floor_mu

    collected = [group_points(p, g, work) for g in p.groups[1:]]
    done = [c for c in collected if c is not None]
    utility_done = (work / "eval" / "retain.utility.json").is_file()
    payload = {
        "machine": machine(),
        "protocol": p.recipe(),
        "precision": "float32",
        "floor_mu": floor_mu(p, work) if utility_done else None,
        "base_models": base_models(work) if utility_done else None,
        "test_groups_finished": len(done),
        "groups": {points.label: rows for points, rows in done},
    }
    if len(done) == len(collected):
        payload["statistic"] = statistic([points for points, _ in done])
    folder = RESULTS if p.groups_seed == 0 and not p.quick else work
    write_results(f"tofu_groups_seed{p.groups_seed}.json", payload, folder)
    print(payload.get("statistic", f"{len(done)} of {len(collected)} test groups finished"))
    return payload
