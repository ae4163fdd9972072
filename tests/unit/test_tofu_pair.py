"""TOFU-mini on other forget authors than forget01 (benchmarks/tofu_pair.py, --forget-authors):
the right rows, spans and evaluation data, and caches that never mix with forget01's."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
tofu_pair = pytest.importorskip("tofu_pair")
bench_tofu = pytest.importorskip("bench_tofu")

from bench_spec import runs_dir  # noqa: E402
from common import RESULTS  # noqa: E402

from tif_unlearn.data.loaders import load_records  # noqa: E402
from tif_unlearn.data.tofu import default_tofu_dir, load_tofu_split  # noqa: E402


def needs_tofu():
    tofu = default_tofu_dir()
    if tofu is None or not (tofu.parent / "tofu-uw-annotations").is_dir():
        pytest.skip("TOFU data not found (../shared/data/tofu and tofu-uw-annotations)")


def test_author_numbers_are_parsed_and_checked():
    assert tofu_pair.parse_authors("188,189") == (188, 189)
    assert tofu_pair.label((188, 189)) == "authors188-189"
    for bad in ("188,188", "a,b", "188;189"):
        with pytest.raises(SystemExit):
            tofu_pair.parse_authors(bad)


def test_forget_rows_are_the_authors_blocks_and_never_a_retain_author():
    full = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(200 * 20)]
    rows = tofu_pair.forget_rows(full, (190, 3), retain_authors=2)
    assert [r["question"] for r in rows[:2]] == ["q3800", "q3801"]
    assert [r["question"] for r in rows[20:22]] == ["q60", "q61"]
    assert len(rows) == 40
    for authors in ((1, 190), (190, 200)):
        with pytest.raises(SystemExit, match="between 2 and 199"):
            tofu_pair.forget_rows(full, authors, retain_authors=2)


def test_the_default_pair_keeps_forget01_and_its_caches():
    default = bench_tofu.protocol(False)
    assert default.on_forget01 and bench_tofu.results_stem(default) == "tofu_mini"
    other = bench_tofu.protocol(False, forget_authors="190,191")
    assert not other.on_forget01
    assert bench_tofu.results_stem(other) == "tofu_mini_authors190-191"
    assert bench_tofu.work_name(forget_authors="190,191") == "tofu_mini_authors190-191"
    assert bench_tofu.work_name() == bench_tofu.work_name(forget_authors="198,199") == "tofu_mini"
    # the same settings otherwise: one recipe, so the pair is named in the run signatures
    assert other.recipe() == default.recipe()
    assert bench_tofu.results_stem(bench_tofu.protocol(True, forget_authors="190,191")) is None
    assert runs_dir(bench_tofu.SPEC, default, Path("w")) == RESULTS / "tofu_mini_runs"


def test_spans_signature_names_other_authors_and_their_annotations(tmp_path):
    spans = tmp_path / "spans.jsonl"
    spans.write_text('{"question": "q", "answer": "a"}\n')
    files = {"gpt4o": spans}
    other = bench_tofu.protocol(False, forget_authors="190,191")
    signature = bench_tofu.spans_signature(other, "tif", files)
    assert signature["forget_authors"] == [190, 191] and "gpt4o_annotations" in signature
    assert "gpt4o_annotations" not in bench_tofu.spans_signature(other, "npo", files)
    assert bench_tofu.spans_signature(bench_tofu.protocol(False), "tif", files) == {}
    spans.write_text('{"question": "q", "answer": "b"}\n')
    changed = bench_tofu.spans_signature(other, "tif", files)
    assert changed["gpt4o_annotations"] != signature["gpt4o_annotations"]


@pytest.mark.slow
def test_paper_spans_of_a_pair_inside_forget05():
    needs_tofu()
    full = load_tofu_split("full")
    rows = tofu_pair.forget_rows(full, (191, 194), retain_authors=10)
    records = tofu_pair.gpt4o_records((191, 194), rows)
    assert [r.question for r in records] == [r["question"] for r in rows]
    assert [r.answer for r in records] == [r["answer"] for r in rows]
    forget05 = load_records(default_tofu_dir().parent / "tofu-uw-annotations/forget05.llm.jsonl")
    assert records[20:] == forget05[80:100]  # author 194 = forget05's fifth author
    forget01 = load_records(default_tofu_dir().parent / "tofu-uw-annotations/forget01.llm.jsonl")
    assert tofu_pair.gpt4o_records((198, 199), full[-40:]) == forget01  # as before the option
    with pytest.raises(SystemExit, match="--annotations"):
        tofu_pair.gpt4o_records((185, 186), tofu_pair.forget_rows(full, (185, 186), 10))


@pytest.mark.slow
def test_learned_is_fitted_on_the_other_forget05_authors():
    needs_tofu()
    full = load_tofu_split("full")
    training = tofu_pair.learned_training_records((191, 194))
    held_out = {r["question"] for r in tofu_pair.forget_rows(full, (191, 194), 10)}
    assert len(training) == 160 and not held_out & {r.question for r in training}
    assert len(tofu_pair.learned_training_records((185, 186))) == 200
    forget01 = {r["question"] for r in full[-40:]}
    first_eight = tofu_pair.learned_training_records((198, 199))
    assert len(first_eight) == 160 and not forget01 & {r.question for r in first_eight}


@pytest.mark.slow
def test_the_evaluator_reads_the_pair_as_its_forget_split(tmp_path):
    needs_tofu()
    from tif_unlearn.evaluate.options import TofuEvalOptions
    from tif_unlearn.evaluate.tofu_data import check_eval_data, load_eval_rows

    full = load_tofu_split("full")
    rows = tofu_pair.forget_rows(full, (12, 185), retain_authors=10)
    folder = tofu_pair.eval_data_dir((12, 185), rows, tmp_path)
    options = TofuEvalOptions(data_dir=str(folder), retain_questions=200, utility_items=40)
    check_eval_data(options)
    forget = load_eval_rows("forget", options)
    assert [r["question"] for r in forget] == [r["question"] for r in rows]
    assert all(len(r["perturbed_answer"]) == 5 for r in forget)
    assert load_eval_rows("retain", options) == load_tofu_split("retain_perturbed")[:40]
    lines = (folder / "forget01.json").read_text().splitlines()
    assert [json.loads(line)["answer"] for line in lines] == [r["answer"] for r in rows]
    with pytest.raises(SystemExit, match="no perturbed answers"):
        tofu_pair.eval_data_dir((100, 101), tofu_pair.forget_rows(full, (100, 101), 10), tmp_path)


def test_the_driver_passes_the_benchmarks_own_options_to_its_tasks(monkeypatch, tmp_path):
    import engine

    calls = []
    monkeypatch.setattr(engine, "run_task", lambda *args, **options: calls.append((args, options)))
    script = tmp_path / "tofu_mini.py"
    monkeypatch.chdir(tmp_path)
    for argv, work in (
        (["--forget-authors", "190,191"], "runs/tofu_mini_authors190-191"),
        (["--quick"], "runs/tofu_mini_quick"),
        (["--work", "elsewhere"], "elsewhere"),
    ):
        monkeypatch.setattr(sys, "argv", [str(script), "--task", "run:tif_lr1e-04", *argv])
        engine.run_protocol(script, bench_tofu.SPEC, "test")
        args, options = calls.pop()
        assert args[2] == (tmp_path / work).resolve()
        assert options == ({"forget_authors": "190,191"} if "--forget-authors" in argv else {})


def test_the_table_shows_the_rouge_parts_that_decide_model_utility():
    rouge = {"retain_rouge": 0.5, "real_authors_rouge": 0.062, "world_facts_rouge": 0.8}
    point = {"forget_quality": 0.2, "model_utility": 0.34, **rouge}
    summary = {"fq": 0.2, "mu": 0.34, "epoch": 3, "setting": "lr=0.0003", "run": "tif_lr3e-04"}
    payload = {
        "verdict": {"tif_family_wins": True, "winners": ["tif"], "best_baseline": "npo"},
        "floor_mu": 0.333,
        "pareto_frontier": ["tif"],
        "best_under_utility_floor": {
            "tif": {**summary, "seeds": [{"fq": 0.2, "mu": 0.34, "epoch": 3}]},
            "npo": None,
        },
        "runs": {"tif_lr3e-04": {"chosen": point}},
        "models": {"finetuned": {**point, "real_authors_rouge": 0.133}},
    }
    import report

    table = report.markdown_table(bench_tofu.SPEC, payload).splitlines()[2:]
    assert table[4].startswith("| tif | 2.00e-01 | 0.340 | lr=0.0003 | 3 | 0.500 / 0.062 / 0.800 |")
    assert table[5].startswith("| npo | – |") and table[5].count("|") == table[4].count("|")
    assert "0.500 / 0.133 / 0.800" in table[6]
