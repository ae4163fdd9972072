"""How the efficacy benchmarks choose: a run's point (the best score under a utility floor), a
family's best setting and its second seed, the families' summary, the Pareto frontier and the
verdict, from finished runs (:func:`finished_runs` reads them)."""

from __future__ import annotations

import json
from pathlib import Path

from cache import parse_run, read_json


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


def is_targeted(family: str) -> bool:
    return family == "tif" or family.startswith("tif-")


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
