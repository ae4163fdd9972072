"""docs/own-data.md's example files: the general questions the example trains on (and uses as
its retain set) must not give away an answer of `tif eval qa`'s builtin held-out set, or the
held-out utility of the documented path would partly measure training data."""

from __future__ import annotations

import json
from pathlib import Path

from tif_unlearn.evaluate import leak
from tif_unlearn.evaluate.qa_utility import builtin_records

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def example_records():
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield path.name, json.loads(line)


def test_example_data_holds_no_builtin_held_out_question_or_answer():
    held_out = builtin_records()
    keys = [(r.question, r.answer[slice(*r.unwanted_spans[0])]) for r in held_out]
    questions = {r.question.casefold() for r in held_out}
    for name, record in example_records():
        assert record["question"].casefold() not in questions, (name, record["question"])
        for question, key in keys:
            assert not leak.mentions(record["answer"], key), (name, record["answer"], question)
