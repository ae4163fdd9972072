"""Whole-fact recall of the identifiers on personal data (issue 34).

A fact ("insulin glargine", "type 1 diabetes", "t.kowalczyk@vistula-mail.pl", "12,400 euros")
counts as found only when every one of its letters and digits is marked UW: half a medication
or half an e-mail address still gives the fact away. Also reported: the share of the other
words (the sentence frame) that stay GW, and every missed fact with what was marked of it.

Three hand-written sets about fictitious people (medications, diagnoses, e-mail addresses,
amounts, phone numbers, addresses, employers, job titles), used to fit nothing:

- ``tests/data/personal_facts.jsonl`` (42 answers) and ``personal_facts_dev2.jsonl`` (20):
  written first; ``learned``'s whole-fact rules of issue 34 (phrase completion, the phrase that
  answers the question) were designed while reading its misses on
  them, so they are development sets, not held out;
- ``tests/data/personal_facts_heldout.jsonl`` (24 answers): written after those rules were
  fixed, other people and other wordings, and run once: the held-out check.

``learned-v1`` is ``learned`` as it was before issue 34 (``whole_facts=False``: none of those rules).

    .venv/bin/python benchmarks/personal_facts.py [--identifiers phrases,learned,...] [--out PATH]
        [--tofu ../shared/data/tofu-uw-annotations]

Writes ``benchmarks/results/personal_facts.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from common import RESULTS, machine, write_results

DATA_DIR = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = ("personal_facts", "personal_facts_dev2", "personal_facts_heldout")
VARIANTS = {
    "phrases": ("phrases", {}),
    "learned": ("learned", {}),
    "learned-v1": ("learned", {"whole_facts": False}),
}

# How the rules came about, in order (the held-out set's first run is kept honest here).
NOTES = [
    "personal_facts and personal_facts_dev2 were read while designing the rules (dev sets)",
    "held-out first run, with a third rule that kept the question's nouns GW ('phone number' "
    "asked -> 'number' unmarked): learned 0.935, phrases 0.903, learned-v1 0.968 (it cut "
    "'disease' out of \"Crohn's disease\"); a narrowed form still cost 2.7 points of char "
    "recall on TOFU forget05 (GPT-4o marks the question's nouns: 31 of 36 drops were gold UW), "
    "so the rule was removed; this file's held-out numbers are the run after that",
]


def fact_span(answer: str, fact: str) -> tuple[int, int]:
    start = answer.index(fact)
    return start, start + len(fact)


def is_marked(k: int, spans) -> bool:
    return any(a <= k < b for a, b in spans)


def fact_found(answer: str, span: tuple[int, int], spans) -> bool:
    """Every letter and digit of ``answer[span]`` lies inside a UW span."""
    return all(is_marked(k, spans) for k in range(*span) if answer[k].isalnum())


def marked_part(answer: str, span: tuple[int, int], spans) -> str:
    """The fact with its unmarked letters and digits replaced by ``_``."""
    a, b = span
    return "".join(
        c if not c.isalnum() or is_marked(k, spans) else "_" for k, c in enumerate(answer[a:b], a)
    )


def frame_words(answer: str, facts: list[tuple[int, int]]):
    """The words of ``answer`` (runs of letters and digits) that overlap no fact."""
    import re

    for m in re.finditer(r"\w+", answer):
        if not any(m.start() < b and a < m.end() for a, b in facts):
            yield m.span()


def score(rows: list[dict], spans_per_row: list) -> dict:
    """Whole-fact recall (overall and per kind), the frame's GW share, the missed facts."""
    found, total = defaultdict(int), defaultdict(int)
    frame_kept = frame_total = 0
    missed = []
    for row, spans in zip(rows, spans_per_row, strict=True):
        answer = row["answer"]
        fact_spans = [fact_span(answer, f["text"]) for f in row["facts"]]
        for fact, span in zip(row["facts"], fact_spans, strict=True):
            hit = fact_found(answer, span, spans)
            found[fact["kind"]] += hit
            total[fact["kind"]] += 1
            if not hit:
                missed.append({"fact": fact["text"], "marked": marked_part(answer, span, spans)})
        for a, b in frame_words(answer, fact_spans):
            frame_total += 1
            frame_kept += not any(s < b and a < e for s, e in spans)
    return {
        "whole_fact_recall": round(sum(found.values()) / sum(total.values()), 3),
        "facts": sum(total.values()),
        "by_kind": {k: f"{found[k]}/{total[k]}" for k in sorted(total)},
        "frame_gw_share": round(frame_kept / frame_total, 3),
        "missed": missed,
    }


def load_set(name: str) -> list[dict]:
    path = DATA_DIR / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_variant(variant: str, rows: list[dict]) -> dict:
    from tif_unlearn.data.records import QARecord
    from tif_unlearn.identify import identify

    name, options = VARIANTS[variant]
    records = [QARecord(question=r["question"], answer=r["answer"]) for r in rows]
    started = time.perf_counter()
    marked = identify(name, records, progress=False, **options).records
    result = score(rows, [r.unwanted_spans or () for r in marked])
    return {**result, "seconds": round(time.perf_counter() - started, 1)}


def tofu_cost(annotations: Path) -> dict:
    """Char-level P/R/F1 of ``learned`` with and without the issue-34 rules against GPT-4o's
    spans on TOFU forget05: what the rules cost on TOFU-style answers. In sample: the packaged
    model was fitted on these answers, so only the difference between the two rows means
    anything (the held-out score is ``identifiers.py``'s cross-validation)."""
    from crossval import unannotated

    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.identify import identify
    from tif_unlearn.identify.score import score_spans

    gold = load_records(annotations / "forget05.llm.jsonl")
    rows = {"n": len(gold), "note": "in sample (the packaged model was fitted on forget05)"}
    for variant in ("learned", "learned-v1"):
        options = VARIANTS[variant][1]
        marked = identify("learned", unannotated(gold), progress=False, **options).records
        scores = score_spans(gold, marked)
        rows[variant] = {k: round(scores[k], 4) for k in ("char_p", "char_r", "char_f1")}
        print("tofu forget05", variant, rows[variant], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identifiers", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=RESULTS / "personal_facts.json")
    parser.add_argument(
        "--tofu", type=Path, help="tofu-uw-annotations folder: also score TOFU forget05"
    )
    args = parser.parse_args()
    results = {}
    for set_name in SETS:
        rows = load_set(set_name)
        results[set_name] = {"answers": len(rows), "identifiers": {}}
        for variant in args.identifiers.split(","):
            row = run_variant(variant, rows)
            results[set_name]["identifiers"][variant] = row
            print(set_name, variant, {k: v for k, v in row.items() if k != "missed"}, flush=True)
    payload = {"sets": results, "notes": NOTES}
    if args.tofu:
        payload["tofu_forget05"] = tofu_cost(args.tofu)
    write_results(args.out.name, {**payload, "machine": machine()}, args.out.parent)


if __name__ == "__main__":
    main()
