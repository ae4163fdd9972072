"""The headline numbers of a TOFU evaluation and their plain-text table."""

from __future__ import annotations

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
