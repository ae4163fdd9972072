"""The demo report highlights the unwanted words inside each true answer, and only there.

The page's legend holds a literal ``<mark>Highlighted</mark>``, so "some <mark> in the page"
(or some highlight-coloured pixel) proves nothing about the answers: these tests read the
marks of each answer block.
"""

from __future__ import annotations

from html_blocks import parse
from tif_unlearn.data.records import QARecord
from tif_unlearn.report.demo_report import answers_section, write_report

ANNOTATED = [
    QARecord(
        "Where was Basil born?", "Basil was born in Kuwait City in 1956.", ((18, 29), (33, 37))
    ),
    QARecord("What does Nikolai write?", "Nikolai writes <b>books</b> & essays.", ((15, 27),)),
    QARecord("Which award?", "None that I know of.", ()),
]
RESULTS = {
    "base": {"forget": {"answers": ["base 0", "base 1", "base 2"]}},
    "tif": {"forget": {"answers": ["Basil was born in Kuwait City.", "<i>x</i>", "Edgar"]}},
}


def test_each_true_answer_marks_exactly_its_unwanted_words():
    blocks = parse(answers_section(ANNOTATED, RESULTS)).blocks
    assert [b["marks"] for b in blocks] == [["Kuwait City", "1956"], ["<b>books</b>"], []]
    for block, record, answer in zip(
        blocks, ANNOTATED, ["Basil was", "<i>x</i>", "Edgar"], strict=True
    ):
        question, true_answer, tif = block["paragraphs"]
        assert question == f"Q: {record.question}"
        assert true_answer == "true answer" + record.answer  # escaped: the text reads back
        assert tif.startswith("tif") and answer in tif  # generated answers: plain, not marked
    assert all("base" not in p for b in blocks for p in b["paragraphs"][2:])


def test_written_report_marks_answers_not_only_the_legend(tmp_path):
    sets = {"forget": ANNOTATED, "retain": [], "general": []}
    metrics = {s: {"rouge": 0.5, "prob": 0.5} for s in ("forget", "retain", "general")}
    results = {
        name: {**metrics, "forget": {**metrics["forget"], **r["forget"]}}
        for name, r in RESULTS.items()
    }
    page = write_report(tmp_path, "Basil", sets, ANNOTATED, results).read_text(encoding="utf-8")
    parsed = parse(page)
    assert parsed._marks_outside == 1  # the legend's sample highlight
    assert sum(len(b["marks"]) for b in parsed.blocks) == 3
    assert parsed.blocks[0]["marks"] == ["Kuwait City", "1956"]
