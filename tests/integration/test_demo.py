"""The demo pipeline end to end on the tiny model, its step cache, and its HTML report."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from html_blocks import parse
from tif_unlearn.data.annotations import merge_spans
from tif_unlearn.demo import DemoConfig, run_demo

pytest.importorskip("wordfreq", reason="the demo's default identifier needs wordfreq")


def _config(tiny_model_dir, out, **extra) -> DemoConfig:
    options = dict(
        model=str(tiny_model_dir),
        out=str(out),
        finetune_epochs=1.0,
        unlearn_epochs=1.0,
        max_new_tokens=4,
        batch_size=8,
    )
    options.update(extra)
    return DemoConfig(**options)


@pytest.fixture(scope="module")
def demo_run(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    report = run_demo(_config(tiny_model_dir, out))
    return out, report


def test_demo_writes_models_results_plot_and_report(demo_run, capsys):
    out, report = demo_run
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["base", "finetuned", "tif", "npo"]
    for model in results.values():
        assert set(model) == {"forget", "retain", "general", "held_out"}
        assert len(model["forget"]["answers"]) == 10
        rates = model["forget"]["leak"]  # `tif eval qa`'s leak audit of the forget answers
        assert rates["n_items"] == 10
        for way in ("greedy", "best_of_n", "format_shift"):  # partial counts every strict leak
            assert 0.0 <= rates[way] <= rates["partial"][way] <= 1.0, way
        assert 0.0 <= model["forget"]["degenerate"] <= 1.0
        assert 0.0 <= model["held_out"]["accuracy"] <= 1.0  # general questions never trained on
    page = report.read_text()
    assert "<mark>" in page and "data:image/png;base64," in page
    assert (out / "forget_vs_retain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    annotated = (out / "data" / "forget.annotated.jsonl").read_text().splitlines()
    assert len(annotated) == 10 and all(
        json.loads(line)["unwanted_spans"] for line in annotated[:3]
    )
    # The legend's sample <mark> aside, each true answer marks exactly its unwanted words.
    blocks = parse(page).blocks
    rows = [json.loads(line) for line in annotated]
    expected = [[r["answer"][a:b] for a, b in merge_spans(r["unwanted_spans"])] for r in rows]
    assert [b["marks"] for b in blocks] == expected


def test_demo_rerun_reuses_finished_steps_and_redoes_changed_ones(demo_run, tiny_model_dir):
    out, _ = demo_run
    stamps = {
        name: (out / name / "tif_run.json").stat().st_mtime_ns
        for name in ("finetuned", "tif", "npo")
    }
    run_demo(_config(tiny_model_dir, out, unlearn_lr=5e-5))
    after = {name: (out / name / "tif_run.json").stat().st_mtime_ns for name in stamps}
    assert after["finetuned"] == stamps["finetuned"], "the fine-tuned model was not reused"
    assert after["tif"] != stamps["tif"] and after["npo"] != stamps["npo"], "changed lr not redone"
    assert json.loads((out / "tif" / "tif_run.json").read_text())["config"]["lr"] == 5e-5


def test_demo_report_renders_in_chromium(demo_run, tmp_path):
    from test_html_render import mark_colour, screenshot

    _, report = demo_run
    # The legend's sample <mark> would pass the pixel check alone: render without it. The plot
    # is hidden too: once decoded (a race with the screenshot) it pushes the answers below the
    # window, and the check failed or passed with the timing.
    legend_sample = "<mark>Highlighted</mark>"
    page = report.read_text(encoding="utf-8")
    assert page.count(legend_sample) == 1 and page.count("<img ") == 1
    page = page.replace(legend_sample, "Highlighted").replace("<img ", "<img hidden ")
    answers_only = tmp_path / "answers-only.html"
    answers_only.write_text(page, encoding="utf-8")
    png = tmp_path / "demo-report.png"
    pixels = screenshot(answers_only, png, tmp_path / "profile")
    print(f"screenshot: {png}")
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, "blank or nearly blank page"
    highlighted = int(np.all(pixels == np.array(mark_colour(), np.uint8), axis=-1).sum())
    assert highlighted > 100, "no highlighted unwanted words visible"


def test_tif_demo_command_runs_the_demo(demo_run, tiny_model_dir, monkeypatch, capsys):
    """`tif demo` itself: its options reach the demo (the epochs and lengths no CLI option sets
    are the fixture's small ones), it reuses the fine-tuned model and rewrites the report."""
    from tif_unlearn import demo as demo_module
    from tif_unlearn.cli.app import main

    out, report = demo_run
    small = dict(finetune_epochs=1.0, unlearn_epochs=1.0, max_new_tokens=4, batch_size=8)
    run_demo_as_given = demo_module.run_demo
    monkeypatch.setattr(
        demo_module, "run_demo", lambda config: run_demo_as_given(replace(config, **small))
    )
    finetuned = (out / "finetuned" / "tif_run.json").stat().st_mtime_ns
    report.unlink()

    code = main(["demo", "--model", str(tiny_model_dir), "--out", str(out), "--methods", "tif,npo"])

    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "strict (a whole span) / partial" in printed.out  # the leak table, both rates
    assert "held-out correct" in printed.out
    assert report.is_file() and (out / "results.json").is_file()
    assert (out / "finetuned" / "tif_run.json").stat().st_mtime_ns == finetuned
    assert list(json.loads((out / "results.json").read_text())) == [
        "base",
        "finetuned",
        "tif",
        "npo",
    ]


def test_tif_demo_refuses_an_unknown_method(tmp_path, capsys):
    from tif_unlearn.cli.app import main

    assert main(["demo", "--out", str(tmp_path / "demo"), "--methods", "tif,magic"]) == 2
    assert "unknown method(s) magic" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
