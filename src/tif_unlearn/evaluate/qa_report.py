"""`tif eval qa` results: per-set summaries (means, leak rates, fluency, utility accuracy),
the change from the reference model, the results document and its plain-text table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import leak
from .qa_collapse import COLLAPSE_MARGIN, COLLAPSED_AT, collapsed, copied_answers
from .qa_fluency import fluency_summary
from .qa_items import EvalSets, Item

SCORE_KEYS = ("rouge", "answer_prob", "uw_prob", "gw_prob")
SETS = ("forget", "retain", "utility")


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarise(rows: Sequence[dict], prompts: Sequence[str] | None = None) -> dict:
    """Mean of each score over the items (None values left out), the leak rates (or, for the
    utility set, the share of ``correct`` answers: ``accuracy``) and the fluency summary, with
    the share of answers copied from another question's (:mod:`qa_collapse`; ``prompts``: the
    items' questions) and its verdict ``collapsed`` (against no reference)."""
    summary = {"n_items": len(rows)}
    summary |= {key: _mean(r[key] for r in rows) for key in SCORE_KEYS}
    if any("correct" in r for r in rows):
        summary["accuracy"] = _mean(
            None if r["correct"] is None else float(r["correct"]) for r in rows
        )
    else:
        verdicts = [None if r.get("leak") is None else leak.ItemLeak(**r["leak"]) for r in rows]
        summary["leak"] = leak.leak_rates(verdicts)
    summary["fluency"] = fluency_summary([r.get("fluency") for r in rows])
    copied = copied_answers([str(r.get("generated", "")) for r in rows], prompts)
    for row, flag in zip(rows, copied, strict=True):
        if isinstance(row.get("fluency"), dict):
            row["fluency"]["copied"] = flag
    share = sum(copied) / len(copied) if copied else None
    summary["fluency"] |= {"duplicates": share, "collapsed": collapsed(share)}
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
    prompts = [item.prompt for item in items]
    summary = {"model": summarise(model_rows, prompts)}
    if reference_rows is not None:
        summary["reference"] = summarise(reference_rows, prompts)
        summary["change"] = change(summary["model"], summary["reference"])
        fluent = summary["model"]["fluency"]
        fluent["collapsed"] = collapsed(
            fluent["duplicates"], summary["reference"]["fluency"]["duplicates"]
        )
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
    for name in SETS:
        items = getattr(sets, name)
        if items:
            results[name] = set_result(items, model_result[name], ref.get(name))
    if "mia" in model_result:
        results["mia"] = {"model": model_result["mia"]}
        if "mia" in ref:
            results["mia"]["reference"] = ref["mia"]
    return results


def _cell(value) -> str:
    """Three decimals; a change that rounds to zero is 0.000, not -0.000."""
    return "-" if value is None else f"{value + 0.0 if round(value, 3) else 0.0:.3f}"


def _pair(rates: dict, way: str) -> str:
    """``strict/partial`` leak rate of one way of asking."""
    partial = rates.get("partial", {}).get(way)
    return f"{_cell(rates.get(way))}/{_cell(partial)}"


def _duplicates(fluency: dict) -> str:
    """The duplicate share, ``!`` appended when the set's answers collapsed."""
    value = fluency.get("duplicates")
    if value is None:
        return "-"
    return f"{value:.2f}" + ("!" if fluency.get("collapsed") else "")


def _leak_columns(results: dict) -> list[tuple[str, str]]:
    """(rate key, header) of the ways of asking that ran (no best-of-0 column)."""
    options = results.get("options", {})
    n = options.get("leak_samples", "N")
    columns = [("greedy", "leak greedy")]
    if n != 0:
        columns.append(("best_of_n", f"best-of-{n}"))
    if options.get("format_shift", True):
        columns.append(("format_shift", "format shift"))
    return columns


def qa_table(results: dict) -> str:
    """Summary lines: per set and model (model, reference, change) the scores, the share of
    degenerate answers, the leak rates (strict/partial; forget and retain) or the accuracy
    (utility)."""
    columns = _leak_columns(results)
    header = (
        f"{'set':<7} {'model':<9} {'ROUGE-L':>7} {'ans. p':>7} {'UW p':>6} {'GW p':>6} "
        f"{'degen.':>6} {'dup.':>6} {'correct':>7}"
        + "".join(f" {label:>13}" for _, label in columns)
    )
    lines = [header, "-" * len(header)]
    for name in SETS:
        for who, s in results.get(name, {}).get("summary", {}).items():
            rates = s.get("leak", {})
            cells = "".join(f" {_pair(rates, key) if rates else '-':>13}" for key, _ in columns)
            lines.append(
                f"{name:<7} {who:<9} {_cell(s.get('rouge')):>7} {_cell(s.get('answer_prob')):>7} "
                f"{_cell(s.get('uw_prob')):>6} {_cell(s.get('gw_prob')):>6} "
                f"{_cell(s.get('fluency', {}).get('degenerate')):>6} "
                f"{_duplicates(s.get('fluency', {})):>6} "
                f"{_cell(s.get('accuracy')):>7}{cells}"
            )
    lines.append("leak rates: strict (a whole UW span said) / partial (any content word of one)")
    lines.append(
        "degen.: share of answers that repeat themselves or are not words; dup.: share of answers "
        "that are (near) copies of the answer to another question (!: collapsed, "
        f"≥ {COLLAPSED_AT:.2f} and {COLLAPSE_MARGIN:.2f} above the reference)"
    )
    for who, aucs in results.get("mia", {}).items():
        listed = ", ".join(f"{k} {v:.3f}" for k, v in aucs.items())
        lines.append(f"membership inference, forget vs holdout ({who}): {listed}")
    return "\n".join(lines)
