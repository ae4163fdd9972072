"""The efficacy engine (benchmarks/engine.py, report.py): one work queue for every benchmark,
whose second seeds join as soon as their family's settings have all run, and one report table
for TOFU-mini and MUSE-mini."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
engine = pytest.importorskip("engine")
bench_tofu = pytest.importorskip("bench_tofu")
bench_muse = pytest.importorskip("bench_muse")
report = pytest.importorskip("report")


class FakeProcess:
    fake = True

    def __init__(self, ticks: int):
        self.ticks = ticks

    def poll(self):
        self.ticks -= 1
        return 0 if self.ticks <= 0 else None


def test_tasks_added_when_one_finishes_start_while_the_others_run():
    # a family's second seed is known once its first-seed runs are done: it joins the queue
    # and takes the free worker while the slow run of another family still runs
    graph = {"run:a": (), "run:slow": ()}
    durations = {"run:a": 1, "run:slow": 10, "run:a_seed1": 1}
    started = []

    def start(task):
        started.append(task)
        return FakeProcess(durations[task])

    def on_done(task, code):
        return {"run:a_seed1": ()} if task == "run:a" else {"run:a": ()}  # known tasks: ignored

    codes = engine.schedule(graph, start, workers=2, on_done=on_done)
    assert codes == {"run:a": 0, "run:slow": 0, "run:a_seed1": 0}
    assert started == ["run:a", "run:slow", "run:a_seed1"]


def test_the_protocol_graph_fine_tunes_evaluates_then_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "second_seed_runs", lambda spec, p, work: ["tif_lr1e-04_seed1"])
    p = bench_tofu.protocol(True)
    graph = engine.protocol_graph(bench_tofu.SPEC, p, tmp_path)
    evals = ("eval:retain", "eval:finetuned")
    assert list(graph)[:4] == ["finetune:retain", "finetune:finetuned", *evals]
    assert graph["eval:retain"] == ("finetune:retain",)
    assert graph["run:tif_lr1e-04"] == graph["run:tif_lr1e-04_seed1"] == evals
    assert len(graph) == 4 + len(p.runs) + 1


def test_the_muse_table_has_its_own_columns_and_formats():
    summary = {"verbmem": 0.25, "knowmem_retain": 0.4, "epoch": 2, "setting": "lr=0.0001"}
    payload = {
        "verdict": {"tif_family_wins": False, "best_tif_family": "tif", "best_baseline": "npo"},
        "floor_knowmem_retain": 0.071,
        "pareto_frontier": ["npo"],
        "best_under_utility_floor": {
            "npo": {**summary, "run": "npo_lr1e-04", "seeds": [{**summary, "epoch": 0}]},
            "ga": None,
        },
        "runs": {},
        "models": {"finetuned": {"verbmem_f1": 0.9243, "knowmem_retain_f1": 0.075}},
    }
    lines = report.markdown_table(bench_muse.SPEC, payload).splitlines()
    assert lines[2].startswith("Utility floor: KnowMem-retain ≥ 0.071 (0.95 × fine-tuned).")
    assert lines[4] == (
        "| family | VerbMem ↓ (mean of 2 seeds) | KnowMem retain | best setting | epoch | seeds |"
    )
    assert lines[6] == (
        "| npo | 0.250 | 0.400 | lr=0.0001 | 2 | 0.250 / 0.400 (none above the floor: the "
        "fine-tuned model) |"
    )
    assert lines[7] == "| ga | – | – | no checkpoint kept the floor | | |"
    assert lines[8] == "| (finetuned) | 0.924 | 0.075 | | | |"
