"""TOFU evaluation of a model: per-item statistics, set aggregates, Forget Quality, MIA.

Model work goes through :mod:`runner` (one batched scoring pass per set for every loss-based
number, one batched greedy generation per set); the numbers come from :mod:`metrics` and
:mod:`tofu_logs`, the same code that aggregates the original TOFU logs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.tofu import TOFU_SPLITS, load_tofu_split
from ..errors import DataError, TifError
from . import metrics
from .runner import ScoredAnswer, generate, score_answers
from .tofu_logs import TofuEvalSet, eval_set_scores, tofu_summary

SET_SPLITS = {
    "forget": "{forget}_perturbed",
    "retain": "retain_perturbed",
    "real_authors": "real_authors_perturbed",
    "world_facts": "world_facts_perturbed",
}
MIA_K = 0.4
log = logging.getLogger("tif_unlearn")


@dataclass
class TofuEvalOptions:
    data_dir: str = "auto"  # a TOFU folder, "hub", or "auto"
    forget_split: str = "forget01"
    max_items: int | None = None  # per set (the original TOFU logs use 300)
    batch_size: int = 16  # scoring batch size
    generate_batch_size: int | None = None  # greedy generation batch size (default 2x)
    max_new_tokens: int = 64
    sets: tuple[str, ...] = ("forget", "retain", "real_authors", "world_facts")
    retain_questions: int | None = None  # keep only the first N retain items (mini protocols)
    utility_items: int | None = None  # cap the retain / real-author / world-fact sets only

    def __post_init__(self):
        if not self.forget_split.startswith("forget"):
            raise TifError(f"--forget-split must be forgetXX, got {self.forget_split!r}")
        if f"{self.forget_split}_perturbed" not in TOFU_SPLITS:
            choices = ", ".join(
                s.removesuffix("_perturbed")
                for s in TOFU_SPLITS
                if s.startswith("forget") and s.endswith("_perturbed")
            )
            raise TifError(f"--forget-split must be one of {choices}, got {self.forget_split!r}")
        if self.max_items is not None and self.max_items < 1:
            raise TifError("--max-items must be >= 1")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise TifError("--batch-size and --max-new-tokens must be >= 1")


def _perturbed_list(row: dict, where: str) -> list[str]:
    value = row.get("perturbed_answer")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DataError(
            "expected a non-empty list of strings", path=where, field="perturbed_answer"
        )
    return value


def load_eval_rows(name: str, options: TofuEvalOptions) -> list[dict]:
    split = SET_SPLITS[name].format(forget=options.forget_split)
    rows = load_tofu_split(split, options.data_dir)
    if name == "retain" and options.retain_questions:
        rows = rows[: options.retain_questions]
    rows = rows[: options.max_items] if options.max_items else rows
    if name != "forget" and options.utility_items:
        rows = rows[: options.utility_items]
    widths = {len(_perturbed_list(r, f"{split}:{i + 1}")) for i, r in enumerate(rows)}
    if len(widths) != 1:
        raise DataError(
            f"items have different numbers of perturbed answers {sorted(widths)}", path=split
        )
    for i, row in enumerate(rows):
        for key in ("question", "answer"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError("missing or empty", path=f"{split}:{i + 1}", field=key)
    return rows


def _score_pairs(model, tokenizer, rows, options, desc) -> dict[str, list[ScoredAnswer]]:
    """One batched scoring pass over every answer variant of a set."""
    pairs, slots = [], []
    for i, row in enumerate(rows):
        variants = {"gt": row["answer"], "para": row.get("paraphrased_answer") or row["answer"]}
        variants.update({f"pert{j}": p for j, p in enumerate(_perturbed_list(row, desc))})
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


def evaluate_set(model, tokenizer, name: str, options: TofuEvalOptions, generate_answers=True):
    """Score and (optionally) generate one eval set; return (TofuEvalSet, per-item dicts)."""
    rows = load_eval_rows(name, options)
    table = _score_pairs(model, tokenizer, rows, options, desc=f"scoring {name}")
    n_perturbed = sum(1 for key in table if key.startswith("pert"))
    generations = [""] * len(rows)
    if generate_answers:
        generations = generate(
            model,
            tokenizer,
            [r["question"] for r in rows],
            max_new_tokens=options.max_new_tokens,
            batch_size=options.generate_batch_size or options.batch_size * 2,
            desc=f"generating {name}",
        )
    eval_set = TofuEvalSet(
        avg_gt_loss=np.array([s.avg_nll for s in table["gt"]]),
        avg_paraphrased_loss=np.array([s.avg_nll for s in table["para"]]),
        average_perturb_loss=np.array(
            [[table[f"pert{j}"][i].avg_nll for j in range(n_perturbed)] for i in range(len(rows))]
        ),
        rouge_l_recall=np.array(
            [metrics.rouge_l_recall(g, r["answer"]) for g, r in zip(generations, rows, strict=True)]
        ),
    )
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
    holdout_split = options.forget_split.replace("forget", "holdout")
    holdout = load_tofu_split(holdout_split, options.data_dir)
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


@dataclass
class RetainReference:
    """What Forget Quality and PrivLeak need from the retain model: its forget-set truth-ratio
    inputs and its Min-40% AUC."""

    forget_set: TofuEvalSet
    min_k_auc: float | None
    source: str


def reference_from_results(results: dict, source: str) -> RetainReference:
    """Read a retain model's ``tif eval tofu`` results file."""
    try:
        items = results["sets"]["forget"]["items"]
        columns = {
            key: np.array([i[key] for i in items], dtype=np.float64)
            for key in ("avg_gt_loss", "avg_paraphrased_loss", "rougeL_recall")
        }
        perturbed = np.array([i["average_perturb_loss"] for i in items], dtype=np.float64)
        if items and perturbed.ndim != 2:
            raise ValueError("average_perturb_loss must be a list of numbers per item")
        forget_set = TofuEvalSet(
            avg_gt_loss=columns["avg_gt_loss"],
            avg_paraphrased_loss=columns["avg_paraphrased_loss"],
            average_perturb_loss=perturbed,
            rouge_l_recall=columns["rougeL_recall"],
        )
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"not a `tif eval tofu` results file ({err})", path=source) from err
    if not items:
        raise DataError("the retain results hold no forget-set items", path=source)
    return RetainReference(forget_set, results.get("mia", {}).get("min_k_auc"), source)


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


def check_eval_data(options: TofuEvalOptions, reference: RetainReference | None = None) -> None:
    """Load and validate every eval set (and the holdout) before any model work; a retain
    reference must hold as many forget items as will be evaluated."""
    for name in options.sets:
        rows = load_eval_rows(name, options)
        size = reference.forget_set.avg_gt_loss.size if reference else len(rows)
        if name == "forget" and size != len(rows):
            raise DataError(
                f"the retain results hold {size} forget-set items but {len(rows)} are evaluated "
                "here: evaluate both models on the same forget split and --max-items",
                path=reference.source,
            )
    if "forget" in options.sets:
        load_tofu_split(options.forget_split.replace("forget", "holdout"), options.data_dir)


def evaluate_tofu(
    model, tokenizer, options: TofuEvalOptions, reference: RetainReference | None = None
) -> dict:
    """Full TOFU evaluation; returns the results dict written to results.json."""
    sets, report = {}, {}
    for name in options.sets:
        eval_set, items = evaluate_set(model, tokenizer, name, options)
        aggregate = eval_set_scores(eval_set, name)
        aggregate[f"{name}_extraction_strength"] = float(
            np.mean([i["extraction_strength"] for i in items])
        )
        sets[name], report[name] = eval_set, {"aggregate": aggregate, "items": items}
    results = {"benchmark": "tofu", "options": vars(options).copy(), "sets": report}
    summary: dict = {}
    if "forget" in sets:
        results["mia"] = membership_inference(model, tokenizer, report["forget"]["items"], options)
        summary.update(report["forget"]["aggregate"])
    if set(sets) >= set(SET_SPLITS):
        summary.update(tofu_summary(sets, reference.forget_set if reference else None))
    else:
        for name in sets:
            summary.update(report[name]["aggregate"])
    if reference is not None and reference.min_k_auc is not None and "mia" in results:
        summary["privleak"] = safe_privleak(results["mia"]["min_k_auc"], reference.min_k_auc)
        results["retain_reference"] = {"source": reference.source, "min_k_auc": reference.min_k_auc}
    results["summary"] = summary
    return results


SUMMARY_ROWS = (
    ("forget_quality", "Forget Quality (KS p-value)"),
    ("model_utility", "Model Utility"),
    ("forget_rouge", "forget ROUGE-L recall"),
    ("forget_prob", "forget probability"),
    ("forget_truth_ratio", "forget truth ratio"),
    ("retain_rouge", "retain ROUGE-L recall"),
    ("retain_prob", "retain probability"),
    ("real_authors_prob", "real authors probability"),
    ("world_facts_prob", "world facts probability"),
    ("privleak", "PrivLeak (Min-40%)"),
)


def summary_table(results: dict) -> str:
    """A short plain-text table of the headline numbers."""
    summary = dict(results.get("summary", {}))
    for key, value in results.get("mia", {}).items():
        summary.setdefault(key, value)
    rows = [
        (label, summary.get(key)) for key, label in SUMMARY_ROWS if summary.get(key) is not None
    ]
    rows += [(f"MIA {k.replace('_auc', '')} AUC", v) for k, v in results.get("mia", {}).items()]
    width = max(len(label) for label, _ in rows) if rows else 0
    return "\n".join(f"{label:<{width}}  {value:.4g}" for label, value in rows)
