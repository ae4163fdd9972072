"""TOFU evaluation data (the options are in :mod:`options`): which splits each eval set reads, and their rows, checked
before any model work (every item has a question, an answer and as many perturbed answers as
the others).
"""

from __future__ import annotations

from ..data.tofu import load_tofu_split
from ..errors import DataError
from .options import TofuEvalOptions
from .tofu_reference import RetainReference

SET_SPLITS = {
    "forget": "{forget}_perturbed",
    "retain": "retain_perturbed",
    "real_authors": "real_authors_perturbed",
    "world_facts": "world_facts_perturbed",
}


def perturbed_answers(row: dict, where: str) -> list[str]:
    """An item's perturbed (wrong) answers as a list; ``where`` names the item in errors."""
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
    widths = {len(perturbed_answers(r, f"{split}:{i + 1}")) for i, r in enumerate(rows)}
    if len(widths) != 1:
        raise DataError(
            f"items have different numbers of perturbed answers {sorted(widths)}", path=split
        )
    for i, row in enumerate(rows):
        for key in ("question", "answer"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError("missing or empty", path=f"{split}:{i + 1}", field=key)
    return rows


def holdout_split(options: TofuEvalOptions) -> str:
    """The holdout split that matches the forget split (forget01 -> holdout01)."""
    return options.forget_split.replace("forget", "holdout")


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
        load_tofu_split(holdout_split(options), options.data_dir)
