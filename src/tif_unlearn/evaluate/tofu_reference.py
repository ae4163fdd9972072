"""The retain model's side of Forget Quality and PrivLeak, read from its ``tif eval tofu``
results file (:func:`tofu.reference_from_model` evaluates a retain model instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .tofu_logs import TofuEvalSet


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
        forget_set = eval_set_from_items(items)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"not a `tif eval tofu` results file ({err})", path=source) from err
    if not items:
        raise DataError("the retain results hold no forget-set items", path=source)
    return RetainReference(forget_set, results.get("mia", {}).get("min_k_auc"), source)


def eval_set_from_items(items: list[dict]) -> TofuEvalSet:
    """One eval set's statistics from the per-item dicts of a ``tif eval tofu`` results file
    (``results["sets"][name]["items"]``); KeyError, TypeError or ValueError if malformed."""
    columns = {
        key: np.array([i[key] for i in items], dtype=np.float64)
        for key in ("avg_gt_loss", "avg_paraphrased_loss", "rougeL_recall")
    }
    perturbed = np.array([i["average_perturb_loss"] for i in items], dtype=np.float64)
    if items and perturbed.ndim != 2:
        raise ValueError("average_perturb_loss must be a list of numbers per item")
    return TofuEvalSet(
        avg_gt_loss=columns["avg_gt_loss"],
        avg_paraphrased_loss=columns["avg_paraphrased_loss"],
        average_perturb_loss=perturbed,
        rouge_l_recall=columns["rougeL_recall"],
    )
