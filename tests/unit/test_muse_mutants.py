"""MUSE evaluation (evaluate/muse.py) pieces the mutation run found unchecked: where the data
comes from (local copy, folder, hub), the checks of each split, and VerbMem, KnowMem and
PrivLeak on planted models (tests/planted.py) whose numbers are computed here by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from eval_data import write_muse_folder
from planted import MARGIN, next_token_llama
from tif_unlearn.errors import DataError, TifError
from tif_unlearn.evaluate import muse
from tif_unlearn.evaluate.options import MuseEvalOptions


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def dump(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")


@pytest.fixture
def local_copy(tmp_path, monkeypatch) -> Path:
    """A MUSE-News copy in ../shared/data of the working directory (where "auto" looks first)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    folder = write_muse_folder(tmp_path / "shared" / "data" / "muse-news")
    dump(folder / "privleak" / "forget.json", ["only in the local copy"])
    return folder


def test_auto_finds_the_local_copy_next_to_the_working_directory(local_copy):
    assert muse.default_muse_dir("news") == Path.cwd() / ".." / "shared" / "data" / "muse-news"
    options = MuseEvalOptions(data_dir="auto")
    assert muse.load_muse_file(options, "privleak/forget.json") == ["only in the local copy"]


def test_a_folder_is_read_and_auto_without_copy_and_hub_go_to_the_hub(tmp_path, monkeypatch):
    import datasets

    asked = []

    def load_dataset(name, config, split):
        asked.append((name, config, split))
        if config == "privleak":
            return [{"text": "a"}, {"text": "b"}]
        return [{"question": "q", "answer": "a"}]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    folder = write_muse_folder(tmp_path / "mine")
    dump(folder / "privleak" / "forget.json", ["from the folder"])
    mine = MuseEvalOptions(data_dir=str(folder))
    assert muse.load_muse_file(mine, "privleak/forget.json") == ["from the folder"]
    assert not asked
    hub = MuseEvalOptions(data_dir="hub", corpus="books")
    assert muse.load_muse_file(hub, "privleak/forget.json") == ["a", "b"]  # texts unwrapped
    assert muse.load_muse_file(hub, "knowmem/retain_qa.json") == [{"question": "q", "answer": "a"}]
    assert asked == [
        ("muse-bench/MUSE-Books", "privleak", "forget"),
        ("muse-bench/MUSE-Books", "knowmem", "retain_qa"),
    ]
    monkeypatch.chdir(tmp_path)  # no ../shared/data/muse-books here
    if muse.default_muse_dir("books") is None:
        auto = MuseEvalOptions(data_dir="auto", corpus="books")
        assert muse.load_muse_file(auto, "privleak/holdout.json") == ["a", "b"]


def test_hub_failure_says_what_could_not_be_loaded(monkeypatch):
    import datasets

    def offline(name, config, split):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(TifError, match=r"muse-bench/MUSE-News \(verbmem/forget\).*ConnectionError"):
        muse.load_muse_file(MuseEvalOptions(data_dir="hub"), "verbmem/forget.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("[1, 2", "cannot read MUSE split"),
        ("[]", "non-empty JSON array"),
        ('{"a": 1}', "non-empty JSON array"),
        ("{}", "non-empty JSON array"),
    ],
)
def test_bad_split_files_are_data_errors(tmp_path, content, message):
    folder = tmp_path / "muse"
    if content is not None:
        (folder / "privleak").mkdir(parents=True)
        (folder / "privleak" / "forget.json").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        muse.load_muse_file(MuseEvalOptions(data_dir=str(folder)), "privleak/forget.json")


def test_max_items_cuts_the_sets_but_not_the_in_context_examples(tmp_path):
    folder = write_muse_folder(tmp_path / "muse")
    icl = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(3)]
    dump(folder / "knowmem" / "forget_qa_icl.json", icl)
    options = MuseEvalOptions(data_dir=str(folder), max_items=2)
    assert len(muse.load_muse_file(options, "knowmem/forget_qa.json")) == 2
    assert muse.load_muse_file(options, "knowmem/forget_qa_icl.json") == icl
    everything = MuseEvalOptions(data_dir=str(folder))
    assert len(muse.load_muse_file(everything, "knowmem/forget_qa.json")) == 4


def test_row_checks_name_the_bad_line():
    good = {"prompt": "a", "gt": "b"}
    assert muse._string_rows([good, good], "v", ("prompt", "gt")) == [good, good]
    for bad in ({"prompt": "a"}, {"prompt": "a", "gt": 3}, "a string"):
        with pytest.raises(DataError) as err:
            muse._string_rows([good, bad], "v", ("prompt", "gt"))
        assert err.value.line == 2 and err.value.path == "v"
    assert muse._texts(["a", "b c"], "t") == ["a", "b c"]
    for bad in (["a", " "], ["a", 3]):
        with pytest.raises(DataError, match="non-empty strings"):
            muse._texts(bad, "t")


@pytest.mark.parametrize(
    ("relative", "bad"),
    [
        ("knowmem/retain_qa.json", [{"question": "q"}]),
        ("verbmem/forget.json", [{"prompt": "p"}]),
        ("privleak/holdout.json", [""]),
    ],
)
def test_check_muse_data_checks_every_split(tmp_path, relative, bad):
    folder = write_muse_folder(tmp_path / "muse")
    options = MuseEvalOptions(data_dir=str(folder))
    muse.check_muse_data(options)  # the good folder passes
    dump(folder / relative, bad)
    with pytest.raises(DataError) as err:
        muse.check_muse_data(options)
    assert err.value.path == relative


def planted_answerer(tokenizer):
    """Says " Kuwait" then ends, after a prompt ending in " to" or ":"; ends at once after any
    other token (so after a chat template's "assistant\\n")."""
    vocab = len(tokenizer)
    kuwait, to, colon = ids(tokenizer, " Kuwait")[0], ids(tokenizer, " to")[-1], ids(tokenizer, ":")
    assert len(colon) == 1 and ids(tokenizer, "Answer:")[-1] == colon[0]

    def row(token: int) -> torch.Tensor:
        logits = torch.zeros(vocab)
        logits[token] = MARGIN
        return logits

    eos = row(tokenizer.eos_token_id)
    model = next_token_llama(
        vocab, {None: eos, to: row(kuwait), colon[0]: row(kuwait), kuwait: eos}
    )
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def test_verbmem_continues_the_raw_prompt_and_averages_rouge_f1(tokenizer, tmp_path):
    folder = write_muse_folder(tmp_path / "muse")
    rows = [
        {"prompt": "The council met on Tuesday to", "gt": "Kuwait"},
        {"prompt": "Residents were told to", "gt": "Kuwait City"},
    ]
    dump(folder / "verbmem" / "forget.json", rows)
    options = MuseEvalOptions(data_dir=str(folder))
    result = muse.verbmem(planted_answerer(tokenizer), tokenizer, options)
    # "Kuwait" vs "Kuwait City": P = 1, R = 1/2, F1 = 2/3
    assert [i["generated"] for i in result["items"]] == ["Kuwait", "Kuwait"]
    assert [i["rougeL_f1"] for i in result["items"]] == pytest.approx([1.0, 2 / 3])
    assert result["verbmem_f1"] == pytest.approx(5 / 6)


def test_knowmem_asks_after_the_raw_in_context_prompt(tokenizer, tmp_path):
    folder = write_muse_folder(tmp_path / "muse")
    qa = [
        {"question": "Where?", "answer": "Kuwait"},
        {"question": "Which city?", "answer": "Kuwait City"},
        {"question": "What?", "answer": "the harbour"},
    ]
    dump(folder / "knowmem" / "forget_qa.json", qa)
    options = MuseEvalOptions(data_dir=str(folder))
    result = muse.knowmem(planted_answerer(tokenizer), tokenizer, options, "forget")
    assert [i["generated"] for i in result["items"]] == ["Kuwait"] * 3
    assert [i["rougeL_f1"] for i in result["items"]] == pytest.approx([1.0, 2 / 3, 0.0])
    assert result["knowmem_forget_f1"] == pytest.approx(5 / 9)


def test_privleak_ranks_texts_by_their_lowest_40_percent_of_tokens(tokenizer, tmp_path):
    """After every token: " book" logit 0, " the" -2, " was" -5, others -30 (negligible). The
    forget text scores " was" then " book" x4, the holdout text " the" x5. Min-40% (2 lowest of
    5): forget (5 + 0)/2 + log Z > holdout (2 + 2)/2 + log Z: the forget text looks less like a
    member, AUC 0, PrivLeak against 0.5: ((1 - 0) - 0.5) / 0.5 = +100 %. (Min-80% would rank
    them the other way: (5 + 0 * 3)/4 < 2.)"""
    vocab = len(tokenizer)
    book, the, was = (ids(tokenizer, w) for w in (" book", " the", " was"))
    assert len(book) == len(the) == len(was) == 1
    logits = torch.full((vocab,), -30.0)
    logits[book], logits[the], logits[was] = 0.0, -2.0, -5.0
    model = next_token_llama(vocab, {None: logits})
    folder = write_muse_folder(tmp_path / "muse")
    dump(folder / "privleak" / "forget.json", ["The was book book book book"])
    dump(folder / "privleak" / "holdout.json", ["The the the the the the"])
    log_z = math.log(1 + math.exp(-2) + math.exp(-5) + (vocab - 3) * math.exp(-30))
    forget = muse._min_k_scores(
        model, tokenizer, ["The was book book book book"], MuseEvalOptions(), "forget"
    )
    assert forget == pytest.approx([2.5 + log_z], rel=1e-5)
    result = muse.privleak(model, tokenizer, MuseEvalOptions(data_dir=str(folder), retain_auc=0.5))
    assert result == {"min_k_auc": 0.0, "privleak": pytest.approx(100.0)}
    without = muse.privleak(model, tokenizer, MuseEvalOptions(data_dir=str(folder)))
    assert without == {"min_k_auc": 0.0, "privleak": None}


def test_muse_table_prints_the_numbers_that_exist_aligned():
    summary = {"verbmem_f1": 0.5, "knowmem_forget_f1": 0.25, "knowmem_retain_f1": 1.0}
    summary |= {"min_k_auc": 0.123456, "privleak": None}
    width = len("Min-40% AUC forget vs holdout")  # the longest label, printed or not
    assert muse.muse_table({"summary": summary}).splitlines() == [
        "VerbMem (ROUGE-L F1)".ljust(width) + "  0.5",
        "KnowMem forget (ROUGE-L F1)".ljust(width) + "  0.25",
        "KnowMem retain (utility)".ljust(width) + "  1",
        "Min-40% AUC forget vs holdout  0.1235",
    ]


def test_privleak_texts_are_scored_a_quarter_batch_at_a_time(tokenizer, tmp_path):
    model = next_token_llama(len(tokenizer), {})
    rows: list[int] = []
    model.register_forward_pre_hook(
        lambda _m, _args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    folder = write_muse_folder(tmp_path / "muse")  # 4 forget and 4 holdout texts
    muse.privleak(model, tokenizer, MuseEvalOptions(data_dir=str(folder), batch_size=4))
    assert rows == [1] * 8
    rows.clear()
    muse.privleak(model, tokenizer, MuseEvalOptions(data_dir=str(folder), batch_size=8))
    assert rows == [2] * 4


@pytest.mark.parametrize("task", ["verbmem", "knowmem"])
def test_a_generator_that_loses_answers_is_refused_not_averaged(
    task, tokenizer, tmp_path, monkeypatch
):
    """One answer per prompt or an error: a generator that returned fewer answers (a failed
    batch dropped) must not give a mean over the rest."""
    folder = write_muse_folder(tmp_path / "muse")
    real = muse.generate
    monkeypatch.setattr(muse, "generate", lambda *a, **k: real(*a, **k)[:-1])
    options = MuseEvalOptions(data_dir=str(folder))
    model = planted_answerer(tokenizer)
    with pytest.raises(ValueError, match="zip"):
        muse.verbmem(model, tokenizer, options) if task == "verbmem" else muse.knowmem(
            model, tokenizer, options, "forget"
        )
