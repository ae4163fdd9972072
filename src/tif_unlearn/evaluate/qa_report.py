"""`tif eval qa` results: per-set summaries (means and leak rates), the change from the
reference model, the results document and its plain-text table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import leak
from .qa_items import EvalSets, Item

SCORE_KEYS = ("rouge", "answer_prob", "uw_prob", "gw_prob")


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarise(rows: Sequence[dict]) -> dict:
    """Mean of each score over the items (None values left out) and the leak rates."""
    summary = {"n_items": len(rows)}
    summary |= {key: _mean(r[key] for r in rows) for key in SCORE_KEYS}
    verdicts = [None if r["leak"] is None else leak.ItemLeak(**r["leak"]) for r in rows]
    summary["leak"] = leak.leak_rates(verdicts)
    return summary


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def change(after: dict, before: dict) -> dict:
    """after − before for every number both have (leak rates included; counts and per-item
    leak verdicts, which are booleans, left out)."""
    out = {}
    for key, value in after.items():
        other = before.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            nested = change(value, other)
            if nested:
                out[key] = nested
        elif _is_number(value) and _is_number(other) and key != "n_items":
            out[key] = value - other
    return out


def set_result(items: Sequence[Item], model_rows, reference_rows=None) -> dict:
    """One set's summary (model, reference, change) and items (true answer, UW, rows)."""
    summary = {"model": summarise(model_rows)}
    if reference_rows is not None:
        summary["reference"] = summarise(reference_rows)
        summary["change"] = change(summary["model"], summary["reference"])
    listed = []
    for i, item in enumerate(items):
        entry = {"prompt": item.prompt, "truth": item.truth, "unwanted_words": item.phrases}
        entry["model"] = model_rows[i]
        if reference_rows is not None:
            entry["reference"] = reference_rows[i]
            scores = {key: model_rows[i][key] for key in SCORE_KEYS}
            entry["change"] = change(scores, reference_rows[i])
        listed.append(entry)
    return {"summary": summary, "items": listed}


def combine(sets: EvalSets, model_result: dict, reference_result: dict | None = None) -> dict:
    """The results document: per set its :func:`set_result`, and the MIA AUCs."""
    ref = reference_result or {}
    results = {}
    for name in ("forget", "retain"):
        items = getattr(sets, name)
        if items:
            results[name] = set_result(items, model_result[name], ref.get(name))
    if "mia" in model_result:
        results["mia"] = {"model": model_result["mia"]}
        if "mia" in ref:
            results["mia"]["reference"] = ref["mia"]
    return results


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def qa_table(results: dict) -> str:
    """Summary lines: per set and model (model, reference, change) the scores and leak rates."""
    n = results.get("options", {}).get("leak_samples", "N")
    header = (
        f"{'set':<7} {'model':<9} {'ROUGE-L':>7} {'ans. p':>7} {'UW p':>6} {'GW p':>6} "
        f"{'leak greedy':>11} {f'best-of-{n}':>10} {'format shift':>12}"
    )
    lines = [header, "-" * len(header)]
    for name in ("forget", "retain"):
        for who, s in results.get(name, {}).get("summary", {}).items():
            rates = s.get("leak", {})
            lines.append(
                f"{name:<7} {who:<9} {_cell(s.get('rouge')):>7} {_cell(s.get('answer_prob')):>7} "
                f"{_cell(s.get('uw_prob')):>6} {_cell(s.get('gw_prob')):>6} "
                f"{_cell(rates.get('greedy')):>11} {_cell(rates.get('best_of_n')):>10} "
                f"{_cell(rates.get('format_shift')):>12}"
            )
    for who, aucs in results.get("mia", {}).items():
        listed = ", ".join(f"{k} {v:.3f}" for k, v in aucs.items())
        lines.append(f"membership inference, forget vs holdout ({who}): {listed}")
    return "\n".join(lines)
