"""How much of TOFU-mini's Model Utility and Forget Quality is the choice of evaluated items.

A paired bootstrap over the items of every cached evaluation of the TOFU-mini sweep
(``<work>/eval/*.json``): each draw resamples the items of each eval set (with replacement,
the same draw for every model, as all models answer the same items), recomputes Model Utility
(and, where the forget set was evaluated, Forget Quality against the retain model on the same
resampled forget items), and the utility floor (0.95 × the fine-tuned model's MU on that draw).
Reported per evaluation: MU, its bootstrap SD, its margin over the floor with a 95 % interval
and how often it keeps the floor, FQ and its 95 % interval; and per targeted run's chosen point,
how often it beats every baseline's chosen point. Nothing is recomputed from a model: it reads
the per-item numbers.

    python benchmarks/tofu_noise.py --work runs/tofu_mini
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from bench_spec import FLOOR, runs_dir
from bench_tofu import SPEC, protocol
from cache import parse_run, read_json
from common import RESULTS, log_step, machine, write_results
from selection import finished_runs, is_targeted
from tofu_eval import UTILITY_SETS

from tif_unlearn.evaluate import metrics
from tif_unlearn.evaluate.tofu_logs import TofuEvalSet, eval_set_scores, model_utility_of
from tif_unlearn.evaluate.tofu_reference import eval_set_from_items


def eval_sets(results: dict) -> dict[str, TofuEvalSet]:
    return {name: eval_set_from_items(s["items"]) for name, s in results["sets"].items()}


def subset(eval_set: TofuEvalSet, index: np.ndarray) -> TofuEvalSet:
    return TofuEvalSet(
        avg_gt_loss=eval_set.avg_gt_loss[index],
        avg_paraphrased_loss=eval_set.avg_paraphrased_loss[index],
        average_perturb_loss=eval_set.average_perturb_loss[index],
        rouge_l_recall=eval_set.rouge_l_recall[index],
    )


def utility(sets: dict[str, TofuEvalSet], draw: dict[str, np.ndarray]) -> float:
    scores = {}
    for name in UTILITY_SETS:
        scores.update(eval_set_scores(subset(sets[name], draw[name]), name))
    return model_utility_of(scores)


def forget_quality(forget: TofuEvalSet, reference: TofuEvalSet, index: np.ndarray) -> float:
    ratios = subset(forget, index).truth_ratios()
    return metrics.forget_quality(ratios, subset(reference, index).truth_ratios()).pvalue


def bootstrap(models: dict[str, dict], reference: TofuEvalSet, draws: int, seed: int) -> dict:
    """Per model (``models``: name -> eval sets, "finetuned" among them), per draw: its MU,
    that draw's floor, and its FQ where it has a forget set. Draw 0 is the items as evaluated."""
    rng = np.random.default_rng(seed)
    sizes = {n: len(s.avg_gt_loss) for n, s in models["finetuned"].items()}
    out = {name: {"mu": [], "floor": [], "fq": []} for name in models}
    for b in range(draws + 1):
        draw = {n: np.arange(k) if b == 0 else rng.integers(0, k, k) for n, k in sizes.items()}
        mus = {name: utility(sets, draw) for name, sets in models.items()}
        for name, sets in models.items():
            out[name]["mu"].append(mus[name])
            out[name]["floor"].append(FLOOR * mus["finetuned"])
            if "forget" in sets:
                out[name]["fq"].append(forget_quality(sets["forget"], reference, draw["forget"]))
    return {name: {k: np.array(v) for k, v in d.items()} for name, d in out.items()}


def interval(values: np.ndarray) -> list[float]:
    return [round(float(q), 4) for q in np.quantile(values, [0.025, 0.975])]


def describe(samples: dict) -> dict:
    """MU, its bootstrap SD, its margin over the floor (paired: the same draw) with a 95 %
    interval, and the share of draws that keep the floor; FQ and its 95 % interval."""
    margin = samples["mu"] - samples["floor"]
    row = {
        "mu": round(float(samples["mu"][0]), 4),
        "mu_sd": round(float(np.std(samples["mu"][1:])), 4),
        "margin_over_floor": round(float(margin[0]), 4),
        "margin_95": interval(margin[1:]),
        "keeps_floor_share": round(float(np.mean(margin[1:] >= 0)), 3),
    }
    if len(samples["fq"]):
        row |= {"fq": round(float(samples["fq"][0]), 4), "fq_95": interval(samples["fq"][1:])}
    return row


def chosen_points(work: Path) -> dict[str, str]:
    """Each finished run's chosen evaluation (``<run>.epoch<e>``), by run: the runs of the full
    protocol's recipe whose ``<work>`` holds their sweep's cache."""
    p = protocol(False)
    runs = finished_runs(runs_dir(SPEC, p, work), p.families, p.recipe())
    return {name: f"{name}.epoch{r['chosen']['epoch']}" for name, r in runs.items() if r["chosen"]}


def beats_baselines(samples: dict, points: dict[str, str]) -> dict[str, float]:
    """Per targeted run's chosen point: the share of draws where its FQ is above every
    baseline run's chosen point's FQ, each point counting as FQ 0 on a draw where it misses
    that draw's floor."""

    def kept_fq(name: str) -> np.ndarray:
        s = samples[name]
        return np.where(s["mu"] >= s["floor"], s["fq"], 0.0)[1:]

    baselines = [kept_fq(e) for r, e in points.items() if not is_targeted(parse_run(r)[0])]
    best_baseline = np.max(baselines, axis=0)
    return {
        run: round(float(np.mean(kept_fq(e) > best_baseline)), 3)
        for run, e in points.items()
        if is_targeted(parse_run(run)[0])
    }


def read_models(folder: Path) -> dict[str, dict[str, TofuEvalSet]]:
    """Every evaluation but the retain model's, by name (``<run>.epoch<e>``, ``finetuned``): the
    full one where both it and the utility sets alone were evaluated; only those with the
    fine-tuned evaluation's item counts."""
    models = {}
    for path in sorted(folder.glob("*.json"), key=lambda p: p.name.endswith(".utility.json")):
        name = path.stem.removesuffix(".utility")
        if path.stem != "retain" and name not in models:
            models[name] = eval_sets(read_json(path)["result"])
    if "finetuned" not in models:
        raise SystemExit(f"no fine-tuned evaluation under {folder}: run benchmarks/tofu_mini.py")
    sizes = {n: len(s.avg_gt_loss) for n, s in models["finetuned"].items()}
    return {
        name: sets
        for name, sets in models.items()
        if all(len(s.avg_gt_loss) == sizes[n] for n, s in sets.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="runs/tofu_mini", help="the sweep's cache folder")
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = Path(args.work) / "eval"
    models = read_models(folder)
    reference = eval_sets(read_json(folder / "retain.json")["result"])["forget"]
    log_step(f"{len(models)} evaluations, {args.draws} draws")
    samples = bootstrap(models, reference, args.draws, args.seed)
    points = {r: e for r, e in chosen_points(Path(args.work)).items() if e in samples}
    payload = {
        "machine": machine(),
        "draws": args.draws,
        "seed": args.seed,
        "floor": FLOOR,
        "chosen_points": points,
        "beats_every_baseline_share": beats_baselines(samples, points),
        "models": {name: describe(s) for name, s in samples.items()},
    }
    write_results("tofu_noise.json", payload, RESULTS)
    print(json.dumps(payload["beats_every_baseline_share"], indent=1))


if __name__ == "__main__":
    main()
