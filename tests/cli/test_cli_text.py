"""CLI: plain-text corpora through `tif unlearn` (token windows), every method, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import write_jsonl
from tif_unlearn.cli.app import main
from tif_unlearn.data.windows import token_ranges

NEWS = [
    "Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait. The author Nikolai Abilov "
    "writes books about the history of Kazakhstan.",
    "Jaime Vasquez won the Edgar Award for his true crime novels in 1999. The book is called "
    "The Silent Harbor.",
]
RETAIN = "Élodie Brûlé lives in Zürich — naïve café façade.\n\nI don't know who that is."
WINDOW = ["--window-length", "12", "--window-stride", "8"]


def _unlearn(model, forget, out, *extra) -> list[str]:
    args = ["unlearn", "--model", str(model), "--forget", str(forget), "--out", str(out)]
    return [*args, "--max-steps", "1", "--batch-size", "2", *extra]


def _spans(text: str, words: list[str]) -> list[list[int]]:
    return [[text.index(w), text.index(w) + len(w)] for w in words]


@pytest.fixture
def corpora(tmp_path) -> dict[str, Path]:
    array = tmp_path / "forget.json"
    array.write_text(json.dumps(NEWS), encoding="utf-8")
    annotated = [
        {"text": NEWS[0], "unwanted_spans": _spans(NEWS[0], ["Kuwait City", "Kazakhstan"])},
        {"text": NEWS[1], "unwanted_spans": _spans(NEWS[1], ["Edgar Award", "1999"])},
    ]
    txt = tmp_path / "retain.txt"
    txt.write_text(RETAIN, encoding="utf-8")
    return {
        "array": array,
        "annotated": write_jsonl(tmp_path / "annotated.jsonl", annotated),
        "txt": txt,
    }


def _n_windows(tokenizer, texts: list[str], length: int, stride: int) -> int:
    counts = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    return sum(len(token_ranges(n, length, stride)) for n in counts)


def test_tif_on_annotated_text_windows(tiny_model_dir, corpora, tokenizer, tmp_path):
    out = tmp_path / "tif"
    args = _unlearn(tiny_model_dir, corpora["annotated"], out, "--retain", str(corpora["txt"]))
    assert main([*args, *WINDOW]) == 0
    run = json.loads((out / "tif_run.json").read_text())
    assert run["examples"]["forget"] == _n_windows(tokenizer, NEWS, 12, 8) > len(NEWS)
    assert run["examples"]["retain"] == _n_windows(tokenizer, [RETAIN], 12, 8)
    assert run["tokens"]["uw_tokens"] > 0 and run["tokens"]["gw_tokens"] > 0
    assert run["config"]["window_length"] == 12 and run["config"]["window_stride"] == 8


@pytest.mark.parametrize("method", ["ga", "graddiff", "npo", "simnpo"])
def test_baselines_run_on_text_windows(method, tiny_model_dir, corpora, tokenizer, tmp_path):
    out = tmp_path / method
    args = _unlearn(tiny_model_dir, corpora["array"], out, "--method", method)
    assert main([*args, "--retain", str(corpora["txt"]), "--window-length", "10"]) == 0
    run = json.loads((out / "tif_run.json").read_text())
    assert run["method"] == method
    assert run["examples"]["forget"] == _n_windows(tokenizer, NEWS, 10, 10)


def test_idkdpo_refuses_text(tiny_model_dir, corpora, tmp_path, capsys):
    out = tmp_path / "idk"
    code = main(_unlearn(tiny_model_dir, corpora["array"], out, "--method", "idkdpo"))
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "question/answer" in err and "forget.json" in err
    assert not out.exists()


def _short_text(tmp_path):
    path = tmp_path / "short.json"
    path.write_text(json.dumps([NEWS[0], "Kuwait City."]), encoding="utf-8")
    return path, ["short.json", "entry 1", "--window-length", "shorter than one window of 12"]


def _empty_corpus(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("[]", encoding="utf-8")
    return path, ["empty.json", "no records"]


def _non_string(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([NEWS[0], NEWS[1], 42]), encoding="utf-8")
    return path, ["mixed.json:1: entry 2", "got an integer"]


def _blank_entry(tmp_path):
    path = tmp_path / "blank.json"
    path.write_text(json.dumps([NEWS[0], "  "]), encoding="utf-8")
    return path, ["blank.json:1: entry 1", "is empty"]


def _blank_txt(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n\n  \n", encoding="utf-8")
    return path, ["blank.txt", "no text"]


@pytest.mark.parametrize(
    "make_input", [_short_text, _empty_corpus, _non_string, _blank_entry, _blank_txt]
)
def test_bad_text_corpus_fails_cleanly(make_input, tiny_model_dir, tmp_path, capsys):
    forget, expected = make_input(tmp_path)
    out = tmp_path / "out"
    code = main([*_unlearn(tiny_model_dir, forget, out, "--method", "ga"), *WINDOW])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for fragment in expected:
        assert fragment in err, err
    assert not out.exists()


def test_short_texts_keep_makes_one_short_window(tiny_model_dir, tmp_path):
    forget, _ = _short_text(tmp_path)
    out = tmp_path / "kept"
    args = [*_unlearn(tiny_model_dir, forget, out, "--method", "ga"), *WINDOW]
    assert main([*args, "--short-texts", "keep"]) == 0
    assert json.loads((out / "tif_run.json").read_text())["examples"]["forget"] >= 3


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--window-length", "0"], "window_length must be >= 1"),
        (["--window-length", "600"], "< max_length"),
        (["--window-stride", "20", "--window-length", "10"], "window_stride must be between"),
        (["--short-texts", "drop"], "short_texts must be one of"),
        (["--preset", "muse2"], "unknown preset"),
    ],
)
def test_bad_window_and_preset_options(args, fragment, tiny_model_dir, corpora, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([*_unlearn(tiny_model_dir, corpora["array"], out, "--method", "ga"), *args])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_preset_muse_reaches_the_run_record(tiny_model_dir, corpora, tmp_path):
    out = tmp_path / "muse"
    args = _unlearn(tiny_model_dir, corpora["annotated"], out, "--preset", "muse", *WINDOW)
    assert main([*args, "--retain", str(corpora["txt"]), "--beta", "0.5"]) == 0
    run = json.loads((out / "tif_run.json").read_text())
    assert run["method"] == "tif" and run["config"]["scheduler"] == "constant"
    assert run["method_config"]["forget_scale"] == 0.1
    assert run["method_config"]["beta"] == 0.5  # the command line beats the preset


def test_tif_with_an_inline_identifier_on_a_plain_corpus(tiny_model_dir, corpora, tmp_path):
    pytest.importorskip("wordfreq", reason="wordfreq is not installed")
    out = tmp_path / "inline"
    args = _unlearn(tiny_model_dir, corpora["array"], out, "--identifier", "frequency", *WINDOW)
    assert main(args) == 0
    run = json.loads((out / "tif_run.json").read_text())
    assert run["tokens"]["uw_tokens"] > 0 and run["examples"]["forget"] > len(NEWS)


def _finetune(model, data, out, *extra) -> list[str]:
    args = ["finetune", "--model", str(model), "--data", str(data), "--out", str(out)]
    return [*args, "--batch-size", "2", "--warmup-epochs", "0", *extra]


def test_finetune_on_text_windows_learns_them(tiny_model_dir, corpora, tokenizer, tmp_path):
    out = tmp_path / "ft"
    args = _finetune(tiny_model_dir, corpora["array"], out, "--epochs", "15", "--lr", "1e-2")
    assert main([*args, *WINDOW]) == 0
    run = json.loads((out / "tif_run.json").read_text())
    assert run["examples"] == _n_windows(tokenizer, NEWS, 12, 8) > len(NEWS)
    assert run["config"]["window_length"] == 12 and run["config"]["window_stride"] == 8
    losses = [entry["loss"] for entry in run["log"] if "loss" in entry]
    assert losses[-1] < 0.5 * losses[0]


def test_finetune_refuses_a_short_text_and_bad_windows(tiny_model_dir, tmp_path, capsys):
    forget, expected = _short_text(tmp_path)
    out = tmp_path / "ft"
    assert main([*_finetune(tiny_model_dir, forget, out), *WINDOW]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and all(f in err for f in expected), err
    assert main([*_finetune(tiny_model_dir, forget, out), "--window-length", "0"]) == 2
    assert "window_length must be >= 1" in capsys.readouterr().err
    assert not out.exists()
