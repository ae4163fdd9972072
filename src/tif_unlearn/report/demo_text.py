"""The demo's tables in the terminal: scores per model, the leak audit, and the forget answers
with their unwanted words in brackets."""

from __future__ import annotations

from ..data.records import QARecord

#: (set, score, header) of the score table; a set no model has is left out.
SCORE_COLUMNS = (
    ("forget", "rouge", "forget ROUGE"),
    ("forget", "prob", "forget prob"),
    ("retain", "rouge", "retain ROUGE"),
    ("retain", "prob", "retain prob"),
    ("general", "rouge", "general ROUGE"),
    ("general", "prob", "general prob"),
    ("held_out", "prob", "held-out prob"),
    ("held_out", "accuracy", "held-out correct"),
)


def _number(value, width: int, digits: int = 3) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def results_table(results: dict[str, dict]) -> str:
    columns = [c for c in SCORE_COLUMNS if any(c[0] in r for r in results.values())]
    header = f"{'model':<12}" + "".join(f" {label:>{len(label)}}" for _, _, label in columns)
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        cells = "".join(f" {_number(r.get(s, {}).get(k), len(label))}" for s, k, label in columns)
        lines.append(f"{name:<12}{cells}")
    return "\n".join(lines)


def leak_ways(n: int) -> list[tuple[str, str]]:
    """(rate key, header) of the ways of asking; no best-of-N column when N is 0."""
    ways = [("greedy", "greedy")]
    if n:
        ways.append(("best_of_n", f"best-of-{n}"))
    return ways + [("format_shift", "format shift")]


def _pair(strict, partial) -> str:
    return "/".join("-" if v is None else f"{v:.2f}" for v in (strict, partial))


def leak_table(results: dict[str, dict], n: int) -> str:
    """Share of forget questions whose unwanted words each model says, per way of asking,
    strict (a whole span) / partial (any content word), the share of degenerate answers and,
    when the results have it, the share of answers copied from another question's."""
    ways = leak_ways(n)
    copies = any("duplicates" in r["forget"] for r in results.values())
    header = f"{'model':<12}" + "".join(f" {label:>13}" for _, label in ways)
    header += f" {'degenerate':>10}" + (f" {'copied':>6}" if copies else "")
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        rates = r["forget"]["leak"]
        partial = rates.get("partial", {})
        cells = "".join(f" {_pair(rates.get(k), partial.get(k)):>13}" for k, _ in ways)
        cells += f" {_number(r['forget'].get('degenerate'), 10, 2)}"
        if copies:
            cells += f" {_number(r['forget'].get('duplicates'), 6, 2)}"
        lines.append(f"{name:<12}{cells}")
    return "\n".join(lines)


def show_annotations(records: list[QARecord], limit: int = 3) -> str:
    """Plain-text view of UW spans: [[unwanted]] words in brackets."""
    lines = []
    for record in records[:limit]:
        text, cursor, parts = record.answer, 0, []
        for start, end in record.unwanted_spans or ():
            parts += [text[cursor:start], "[[", text[start:end], "]]"]
            cursor = end
        lines.append("  " + "".join(parts) + text[cursor:])
    return "\n".join(lines)


def leak_caption(n_forget: int, leak_samples: int) -> str:
    samples = f"any of {leak_samples} sampled answers; " if leak_samples else ""
    return (
        f"Leak audit: share of the {n_forget} forget questions whose unwanted words the model "
        f"says, strict (a whole span) / partial (any content word of one), per way of asking "
        f"(greedy answer; {samples}the question in other forms), the share of degenerate "
        "greedy answers (repetition or non-words) and of answers copied from another "
        "question's (near-identical words):"
    )
