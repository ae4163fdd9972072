"""Read the original TOFU evaluation logs and aggregate them into Forget Quality and Model Utility.

Format (``locuslab/tofu`` ``evaluate_util.py``): one folder per model holding
``eval_log_forget.json`` (forget set), ``eval_log.json`` (retain set),
``eval_real_author_wo_options.json`` and ``eval_real_world_wo_options.json``, each a dict of
statistics keyed by item index strings (``{"avg_gt_loss": {"0": 0.01, ...}, ...}``), plus
``eval_log_aggregated.json`` = the four dicts under their file names (the input of TOFU's
``aggregate_eval_stat.py``). The aggregation uses :mod:`tif_unlearn.evaluate.metrics`, so the
same code summarises our own per-item results (build :class:`TofuEvalSet` from them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tif_unlearn.errors import DataError, TifError
from tif_unlearn.evaluate import metrics

TOFU_LOG_FILES: dict[str, str] = {
    "forget": "eval_log_forget.json",
    "retain": "eval_log.json",
    "real_authors": "eval_real_author_wo_options.json",
    "world_facts": "eval_real_world_wo_options.json",
}
AGGREGATED_LOG_FILE = "eval_log_aggregated.json"
UTILITY_SETS: tuple[str, ...] = ("retain", "real_authors", "world_facts")
UTILITY_KEYS: tuple[str, ...] = tuple(
    f"{name}_{metric}" for name in UTILITY_SETS for metric in ("prob", "rouge", "truth_ratio")
)
_REQUIRED_KEYS = ("avg_gt_loss", "avg_paraphrased_loss", "average_perturb_loss", "rougeL_recall")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TofuEvalSet:
    """Per-item statistics of one TOFU eval set, in item-index order (N items, J perturbed).

    Losses are mean answer-token NLLs (TOFU's ``avg_*`` keys); ``rouge_l_recall`` is of the
    greedy generation against the answer.
    """

    avg_gt_loss: np.ndarray  # (N,)
    avg_paraphrased_loss: np.ndarray  # (N,)
    average_perturb_loss: np.ndarray  # (N, J)
    rouge_l_recall: np.ndarray  # (N,)

    def truth_ratios(self) -> np.ndarray:
        """Per-item R (see :func:`metrics.truth_ratio`), (N,)."""
        return metrics.truth_ratio(self.avg_paraphrased_loss, self.average_perturb_loss)


def _load_json(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg}, line {exc.lineno})", path=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise DataError("invalid UTF-8; save the file as UTF-8", path=str(path)) from exc
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror or exc}", path=str(path)) from exc
    if not isinstance(data, dict):
        raise DataError("expected a JSON object of TOFU evaluation statistics", path=str(path))
    return data


def _per_item(log: Mapping, key: str, source: str) -> dict:
    values = log.get(key)
    if not isinstance(values, dict) or not values:
        raise DataError("missing or empty (not a TOFU evaluation log?)", path=source, field=key)
    return values


def parse_eval_set(log: Mapping, source: str = "<log>") -> TofuEvalSet:
    """A :class:`TofuEvalSet` from one TOFU log dict; ``source`` names it in error messages."""
    columns = {key: _per_item(log, key, source) for key in _REQUIRED_KEYS}
    indices = set(columns["avg_gt_loss"])
    for key, values in columns.items():
        if set(values) != indices:
            raise DataError("item indices differ from those of avg_gt_loss", path=source, field=key)
    try:
        order = sorted(indices, key=int)
    except ValueError as exc:
        raise DataError(f"item indices must be integers ({exc})", path=source) from exc
    arrays = {}
    for key, values in columns.items():
        try:
            arrays[key] = np.asarray([values[i] for i in order], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"not numbers of one shape per item ({exc})", path=source, field=key
            ) from exc
    if arrays["average_perturb_loss"].ndim != 2:
        raise DataError(
            "expected a list of losses per item", path=source, field="average_perturb_loss"
        )
    return TofuEvalSet(
        avg_gt_loss=arrays["avg_gt_loss"],
        avg_paraphrased_loss=arrays["avg_paraphrased_loss"],
        average_perturb_loss=arrays["average_perturb_loss"],
        rouge_l_recall=arrays["rougeL_recall"],
    )


def read_tofu_logs(
    logs: PathLike, sets: Iterable[str] = tuple(TOFU_LOG_FILES)
) -> dict[str, TofuEvalSet]:
    """Read the eval sets named in ``sets`` (keys of :data:`TOFU_LOG_FILES`) from a TOFU logs
    folder (the per-set files, else its ``eval_log_aggregated.json``) or an aggregated JSON file.
    """
    path = Path(logs)
    if not path.exists():
        raise TifError(f"TOFU evaluation logs not found: {path}")
    aggregated = path if path.is_file() else path / AGGREGATED_LOG_FILE
    aggregated_data: dict | None = None
    result = {}
    for name in sets:
        file_name = TOFU_LOG_FILES[name]
        if path.is_dir() and (path / file_name).is_file():
            result[name] = parse_eval_set(_load_json(path / file_name), str(path / file_name))
            continue
        if aggregated_data is None and aggregated.is_file():
            aggregated_data = _load_json(aggregated)
        if aggregated_data is None or file_name not in aggregated_data:
            raise TifError(f"{path}: no {file_name} (nor an {AGGREGATED_LOG_FILE} holding it)")
        result[name] = parse_eval_set(aggregated_data[file_name], f"{aggregated}: {file_name}")
    return result


def eval_set_scores(eval_set: TofuEvalSet, name: str) -> dict[str, float]:
    """TOFU's three numbers for one eval set, as ``aggregate_eval_stat.get_model_utility``:
    Prob. (normalised over the perturbed answers for real authors / world facts), mean ROUGE-L
    recall, Truth Ratio (the forget-set form for ``forget``, else the retain form)."""
    if name in ("forget", "retain"):
        prob = metrics.probability(eval_set.avg_gt_loss)
    else:
        prob = metrics.normalized_probability(eval_set.avg_gt_loss, eval_set.average_perturb_loss)
    ratios = eval_set.truth_ratios()
    score = (
        metrics.forget_truth_ratio_score if name == "forget" else metrics.retain_truth_ratio_score
    )
    return {
        f"{name}_prob": float(np.mean(prob)),
        f"{name}_rouge": float(np.mean(eval_set.rouge_l_recall)),
        f"{name}_truth_ratio": score(ratios),
    }


def _check_same_forget_size(ours: TofuEvalSet, reference: TofuEvalSet) -> None:
    n_ours, n_reference = ours.avg_gt_loss.size, reference.avg_gt_loss.size
    if n_ours != n_reference:
        raise TifError(
            f"forget sets differ in size ({n_ours} vs {n_reference} items): Forget Quality needs "
            "both models evaluated on the same forget split"
        )


def model_utility_of(scores: Mapping[str, float]) -> float:
    """Model Utility: the harmonic mean of the nine :data:`UTILITY_KEYS` in ``scores`` (other
    keys, such as the forget set's, are ignored)."""
    missing = [key for key in UTILITY_KEYS if key not in scores]
    if missing:
        raise TifError(f"Model Utility needs {', '.join(missing)}")
    return metrics.model_utility({key: scores[key] for key in UTILITY_KEYS})


def tofu_summary(
    sets: Mapping[str, TofuEvalSet], retain_model_forget: TofuEvalSet | None
) -> dict[str, float | None]:
    """Forget Quality (KS p-value against the retain model's forget set; None without one),
    KS statistic, Model Utility, its 9 components, and the forget-set numbers."""
    missing = [name for name in TOFU_LOG_FILES if name not in sets]
    if missing:
        raise TifError(f"TOFU summary needs the eval sets {', '.join(missing)}")
    scores: dict[str, float] = {}
    for name in (*UTILITY_SETS, "forget"):
        scores.update(eval_set_scores(sets[name], name))
    quality, statistic = None, None
    if retain_model_forget is not None:
        _check_same_forget_size(sets["forget"], retain_model_forget)
        ks = metrics.forget_quality(
            sets["forget"].truth_ratios(), retain_model_forget.truth_ratios()
        )
        quality, statistic = ks.pvalue, ks.statistic
    utility = model_utility_of(scores)
    return {
        "forget_quality": quality,
        "ks_statistic": statistic,
        "model_utility": utility,
        **scores,
    }


def aggregate_tofu_logs(forget_logs_dir: PathLike, retain_logs_dir: PathLike | None) -> dict:
    """Summarise the TOFU logs of an evaluated (e.g. unlearned) model, ``forget_logs_dir``,
    against those of a retain model, ``retain_logs_dir`` (only its forget set is read):
    ``forget_quality``, ``ks_statistic``, ``model_utility``, ``retain_prob`` … ``world_facts_
    truth_ratio`` (:data:`UTILITY_KEYS`), ``forget_prob``, ``forget_rouge``, ``forget_truth_ratio``.
    """
    sets = read_tofu_logs(forget_logs_dir)
    reference = None
    if retain_logs_dir is not None:
        reference = read_tofu_logs(retain_logs_dir, sets=("forget",))["forget"]
    return tofu_summary(sets, reference)


def aggregate_command(forget_logs: PathLike, retain_logs: PathLike | None) -> dict:
    """Entry point for ``tif eval aggregate``: the same as :func:`aggregate_tofu_logs`."""
    return aggregate_tofu_logs(forget_logs, retain_logs)
