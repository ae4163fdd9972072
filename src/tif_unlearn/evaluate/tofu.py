"""TOFU evaluation of a model: per-item statistics, set aggregates, Forget Quality, MIA.

Model work goes through :mod:`scoring` (one batched scoring pass per set for every loss-based
number) and :mod:`generation` (one batched greedy generation per set); the numbers come from
:mod:`metrics` and :mod:`tofu_logs`, the same code that aggregates the original TOFU logs.
Options: :mod:`options`; data: :mod:`tofu_data`; a retain model's results file: :mod:`tofu_reference`; the
headline table: :mod:`tofu_metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..data.tofu import load_tofu_split
from . import metrics
from .generation import generate
from .options import TofuEvalOptions
from .scoring import ScoredAnswer, score_answers
from .tofu_data import SET_SPLITS, holdout_split, load_eval_rows, perturbed_answers
from .tofu_logs import TofuEvalSet, eval_set_scores, tofu_summary
from .tofu_reference import RetainReference

MIA_K = 0.4
log = logging.getLogger("tif_unlearn")


def _score_pairs(model, tokenizer, rows, options, desc) -> dict[str, list[ScoredAnswer]]:
    """One batched scoring pass over every answer variant of a set."""
    pairs, slots = [], []
    for i, row in enumerate(rows):
        variants = {"gt": row["answer"], "para": row.get("paraphrased_answer") or row["answer"]}
        variants.update({f"pert{j}": p for j, p in enumerate(perturbed_answers(row, desc))})
        for key, answer in variants.items():
            pairs.append((row["question"], answer))
            slots.append((i, key))
    scored = score_answers(model, tokenizer, pairs, batch_size=options.batch_size, desc=desc)
    table: dict[str, list] = {}
    for (i, key), value in zip(slots, scored, strict=True):
        table.setdefault(key, [None] * len(rows))[i] = value
    return table


def _item_records(rows, table, generations, eval_set: TofuEvalSet) -> list[dict]:
    ratios = eval_set.truth_ratios()
    items = []
    for i, row in enumerate(rows):
        gt: ScoredAnswer = table["gt"][i]
        items.append(
            {
                "question": row["question"],
                "answer": row["answer"],
                "generated": generations[i],
                "avg_gt_loss": gt.avg_nll,
                "prob": float(np.exp(-gt.avg_nll)),
                "avg_paraphrased_loss": float(eval_set.avg_paraphrased_loss[i]),
                "average_perturb_loss": eval_set.average_perturb_loss[i].tolist(),
                "truth_ratio": float(ratios[i]),
                "rougeL_recall": float(eval_set.rouge_l_recall[i]),
                "extraction_strength": metrics.extraction_strength(
                    gt.pred_ids[:-1], gt.label_ids[:-1]
                ),
                "min_k": metrics.min_k_score(gt.token_logps, MIA_K),
                "zlib": metrics.zlib_score(gt.avg_nll, row["answer"]),
            }
        )
    return items


def _greedy_answers(model, tokenizer, rows, name: str, options: TofuEvalOptions) -> list[str]:
    return generate(
        model,
        tokenizer,
        [r["question"] for r in rows],
        max_new_tokens=options.max_new_tokens,
        batch_size=options.generate_batch_size,
        desc=f"generating {name}",
    )


def _eval_set(rows, table, generations) -> TofuEvalSet:
    n_perturbed = sum(1 for key in table if key.startswith("pert"))
    return TofuEvalSet(
        avg_gt_loss=np.array([s.avg_nll for s in table["gt"]]),
        avg_paraphrased_loss=np.array([s.avg_nll for s in table["para"]]),
        average_perturb_loss=np.array(
            [[table[f"pert{j}"][i].avg_nll for j in range(n_perturbed)] for i in range(len(rows))]
        ),
        rouge_l_recall=np.array(
            [metrics.rouge_l_recall(g, r["answer"]) for g, r in zip(generations, rows, strict=True)]
        ),
    )


def evaluate_set(model, tokenizer, name: str, options: TofuEvalOptions, generate_answers=True):
    """Score and (optionally) generate one eval set; return (TofuEvalSet, per-item dicts)."""
    rows = load_eval_rows(name, options)
    table = _score_pairs(model, tokenizer, rows, options, desc=f"scoring {name}")
    generations = [""] * len(rows)
    if generate_answers:
        generations = _greedy_answers(model, tokenizer, rows, name, options)
    eval_set = _eval_set(rows, table, generations)
    return eval_set, _item_records(rows, table, generations, eval_set)


def mia_scores(model, tokenizer, rows: Sequence[dict], options: TofuEvalOptions, desc: str) -> dict:
    scored = score_answers(
        model,
        tokenizer,
        [(r["question"], r["answer"]) for r in rows],
        batch_size=options.batch_size,
        desc=desc,
    )
    return {
        "loss": [s.avg_nll for s in scored],
        "min_k": [metrics.min_k_score(s.token_logps, MIA_K) for s in scored],
        "zlib": [
            metrics.zlib_score(s.avg_nll, r["answer"]) for s, r in zip(scored, rows, strict=True)
        ],
    }


def membership_inference(model, tokenizer, forget_items, options: TofuEvalOptions) -> dict:
    """Loss / zlib / Min-40% ROC-AUC of forget vs holdout (holdoutXX, XX from the forget split)."""
    holdout = load_tofu_split(holdout_split(options), options.data_dir)
    if options.max_items:
        holdout = holdout[: options.max_items]
    holdout_scores = mia_scores(model, tokenizer, holdout, options, "scoring holdout")
    forget_scores = {
        "loss": [i["avg_gt_loss"] for i in forget_items],
        "min_k": [i["min_k"] for i in forget_items],
        "zlib": [i["zlib"] for i in forget_items],
    }
    return {
        f"{attack}_auc": metrics.mia_auc(forget_scores[attack], holdout_scores[attack])
        for attack in ("loss", "zlib", "min_k")
    }


def reference_from_model(
    model, tokenizer, options: TofuEvalOptions, source: str
) -> RetainReference:
    """Evaluate a retain model on the forget set (no generation needed) and the holdout set."""
    forget_set, items = evaluate_set(model, tokenizer, "forget", options, generate_answers=False)
    mia = membership_inference(model, tokenizer, items, options)
    return RetainReference(forget_set, mia["min_k_auc"], source)


def safe_privleak(auc: float, retain_auc: float) -> float | None:
    """PrivLeak, or None (with a warning) when the retain AUC leaves it undefined (AUC = 1)."""
    try:
        return metrics.privleak(auc, retain_auc)
    except ValueError as err:
        log.warning("PrivLeak left out: %s", err)
        return None


def _set_report(eval_set: TofuEvalSet, items: list[dict], name: str) -> dict:
    aggregate = eval_set_scores(eval_set, name)
    aggregate[f"{name}_extraction_strength"] = float(
        np.mean([i["extraction_strength"] for i in items])
    )
    return {"aggregate": aggregate, "items": items}


def _summary(sets: dict, report: dict, reference: RetainReference | None) -> dict:
    """The headline numbers: forget aggregates, then the TOFU summary (all four sets) or the
    other sets' aggregates."""
    summary: dict = {}
    if "forget" in sets:
        summary.update(report["forget"]["aggregate"])
    if set(sets) >= set(SET_SPLITS):
        summary.update(tofu_summary(sets, reference.forget_set if reference else None))
    else:
        for name in sets:
            summary.update(report[name]["aggregate"])
    return summary


def _add_privleak(results: dict, summary: dict, reference: RetainReference | None) -> None:
    if reference is not None and reference.min_k_auc is not None and "mia" in results:
        summary["privleak"] = safe_privleak(results["mia"]["min_k_auc"], reference.min_k_auc)
        results["retain_reference"] = {"source": reference.source, "min_k_auc": reference.min_k_auc}


def evaluate_tofu(
    model, tokenizer, options: TofuEvalOptions, reference: RetainReference | None = None
) -> dict:
    """Full TOFU evaluation; returns the results dict written to results.json."""
    sets, report = {}, {}
    for name in options.sets:
        eval_set, items = evaluate_set(model, tokenizer, name, options)
        sets[name], report[name] = eval_set, _set_report(eval_set, items, name)
    results = {"benchmark": "tofu", "options": vars(options).copy(), "sets": report}
    if "forget" in sets:
        results["mia"] = membership_inference(model, tokenizer, report["forget"]["items"], options)
    summary = _summary(sets, report, reference)
    _add_privleak(results, summary, reference)
    results["summary"] = summary
    return results
