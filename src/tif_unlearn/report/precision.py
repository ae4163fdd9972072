"""Whether results compared side by side were made at one precision.

``tif eval`` records the weights dtype it evaluated in (``"dtype"`` in the results file). Greedy
answers depend on it: on one CPU, bfloat16 and float32 agree on answer probabilities to
r >= 0.9997 but give identical greedy answers for only a few questions (4 of 40 TOFU forget01
answers), so ROUGE-based numbers (forget ROUGE, Model Utility, VerbMem, KnowMem) are comparable
only within one precision. ``--dtype auto`` picks bfloat16 on a CPU with AVX-512-BF16 or AMX and
float32 elsewhere, so results meant to be compared across machines should use
``--dtype float32``.
"""

from __future__ import annotations

import logging

log = logging.getLogger("tif_unlearn")
UNRECORDED = "unrecorded"


def result_precision(results: dict) -> str:
    """The weights dtype a results file was made in: ``dtype`` (``tif eval tofu`` / ``muse``),
    ``options.dtype`` (``tif eval qa``; a report row keeps its file under ``qa``), else
    ``unrecorded`` (files written before the precision was recorded)."""
    for document in (results, results.get("qa")):
        if not isinstance(document, dict):
            continue
        options = document.get("options")
        for dtype in (
            document.get("dtype"),
            options.get("dtype") if isinstance(options, dict) else None,
        ):
            if isinstance(dtype, str) and dtype:
                return dtype
    return UNRECORDED


def mixed_precision_warning(loaded: list[tuple[str, dict]]) -> str | None:
    """One line naming the precision of each result when they differ, else None. Results that
    do not record their precision count as a precision of their own only next to recorded
    ones (two unrecorded files are not flagged)."""
    by_precision: dict[str, list[str]] = {}
    for name, results in loaded:
        by_precision.setdefault(result_precision(results), []).append(name)
    if len(by_precision) < 2:
        return None
    groups = "; ".join(f"{dtype}: {', '.join(names)}" for dtype, names in by_precision.items())
    return (
        f"these results were made at different precisions ({groups}): ROUGE-based numbers "
        "are comparable only within one precision; evaluate all with --dtype float32 to compare"
    )


def warn_if_mixed_precision(loaded: list[tuple[str, dict]]) -> None:
    """Log :func:`mixed_precision_warning` (one line on stderr) when there is one."""
    warning = mixed_precision_warning(loaded)
    if warning:
        log.warning("warning: %s", warning)
