"""The demo's tables in the terminal: scores per model, the leak audit, and the forget answers
with their unwanted words in brackets."""

from __future__ import annotations

from ..data.records import QARecord


def results_table(results: dict[str, dict]) -> str:
    header = (
        f"{'model':<12} {'forget ROUGE':>12} {'forget prob':>11} {'retain ROUGE':>12} "
        f"{'retain prob':>11} {'general ROUGE':>13} {'general prob':>12}"
    )
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        lines.append(
            f"{name:<12} {r['forget']['rouge']:>12.3f} {r['forget']['prob']:>11.3f} "
            f"{r['retain']['rouge']:>12.3f} {r['retain']['prob']:>11.3f} "
            f"{r['general']['rouge']:>13.3f} {r['general']['prob']:>12.3f}"
        )
    return "\n".join(lines)


def leak_table(results: dict[str, dict], n: int) -> str:
    """Share of forget questions whose unwanted words each model says, per way of asking."""
    header = f"{'model':<12} {'greedy':>7} {f'best-of-{n}':>10} {'format shift':>12}"
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        rates = r["forget"]["leak"]
        cells = [rates[k] for k in ("greedy", "best_of_n", "format_shift")]
        shown = ["-" if v is None else f"{v:.2f}" for v in cells]
        lines.append(f"{name:<12} {shown[0]:>7} {shown[1]:>10} {shown[2]:>12}")
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
