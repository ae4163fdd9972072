"""The numbers of a TOFU evaluation summary: which way each one improves, the headline rows
and their plain-text table."""

from __future__ import annotations

PER_SET_METRICS = ("prob", "rouge", "truth_ratio", "extraction_strength")

# Which way each summary number improves: "max" (higher is better) or "min" (lower is better).
# PrivLeak has none: it is best near 0 (about -100: memorised; above 0: over-unlearned).
METRIC_DIRECTIONS: dict[str, str] = {
    # the forget set: the unlearned model should no longer give, or be sure of, its answers
    "forget_prob": "min",
    "forget_rouge": "min",
    "forget_truth_ratio": "max",  # mean(min(R, 1/R)): 1 = true and wrong answers alike
    "forget_extraction_strength": "min",
    # the utility sets: the model should keep what it knew
    "retain_prob": "max",
    "retain_rouge": "max",
    "retain_truth_ratio": "max",
    "retain_extraction_strength": "max",
    "real_authors_prob": "max",
    "real_authors_rouge": "max",
    "real_authors_truth_ratio": "max",
    "real_authors_extraction_strength": "max",
    "world_facts_prob": "max",
    "world_facts_rouge": "max",
    "world_facts_truth_ratio": "max",
    "world_facts_extraction_strength": "max",
    # against the retain model (all four sets evaluated)
    "forget_quality": "max",  # KS p-value: higher = forget set closer to the retain model's
    "ks_statistic": "min",  # KS distance between the two sets of truth ratios
    "model_utility": "max",  # harmonic mean of the utility sets' numbers
}


def set_metrics(set_name: str) -> tuple[str, ...]:
    """The summary numbers of one evaluated set (``forget_prob``, ...)."""
    return tuple(f"{set_name}_{metric}" for metric in PER_SET_METRICS)


def improves(value: float, best: float, direction: str) -> bool:
    """Whether ``value`` is better than ``best`` for a metric that improves towards
    ``direction`` ("max" or "min")."""
    return value > best if direction == "max" else value < best


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
