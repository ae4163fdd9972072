"""Efficacy v3's engine (benchmarks/tofu_groups*.py): the group draw, equal optimizer steps for
the two base models, the dynamic work queue, the pre-registered statistic, and the < 2 %
truncation rule of the answer length."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
tofu_groups = pytest.importorskip("tofu_groups")
report = pytest.importorskip("tofu_groups_report")
tofu_eval = pytest.importorskip("tofu_eval")
engine = pytest.importorskip("engine")


def test_groups_are_disjoint_pairs_from_the_pool_fixed_by_the_seed():
    groups = tofu_groups.draw_groups(0, 5)
    authors = [a for g in groups for a in g]
    assert len(groups) == 5 and all(len(g) == 2 for g in groups)
    assert len(set(authors)) == 10
    assert set(authors) <= set(tofu_groups.POOL)
    assert not set(authors) & set(tofu_groups.DEV_GROUP) and not set(authors) & set(range(10))
    assert tofu_groups.draw_groups(0, 5) == groups
    assert tofu_groups.draw_groups(1, 5) != groups
    # the pre-registered draw (benchmarks/README.md)
    assert groups == [(186, 192), (180, 182), (10, 15), (17, 195), (11, 14)]


def test_too_many_groups_for_the_pool_are_refused():
    with pytest.raises(SystemExit, match="at most 14 test groups"):
        tofu_groups.draw_groups(0, 15)


def test_the_retain_model_gets_the_targets_optimizer_and_warm_up_steps(tmp_path):
    files = {}
    for name, rows in (("target", 440), ("retain", 200)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text('{"question": "q", "answer": "a"}\n' * rows)
    p = tofu_groups.GroupsProtocol()
    target = tofu_groups.finetune_fields(p, "target", files)
    retain = tofu_groups.finetune_fields(p, "retain", files)
    assert (target["epochs"], target["warmup_epochs"]) == (5.0, 0.5)
    assert retain["epochs"] == pytest.approx(11.0) and retain["warmup_epochs"] == pytest.approx(1.1)
    steps = lambda f, n: f["epochs"] * n / f["batch_size"]  # noqa: E731
    assert steps(retain, 200) == pytest.approx(steps(target, 440)) == 550


class FakeProcess:
    fake = True

    def __init__(self, code: int, ticks: int):
        self.code, self.ticks = code, ticks

    def poll(self):
        self.ticks -= 1
        return self.code if self.ticks <= 0 else None


def test_the_queue_starts_a_ready_task_as_soon_as_a_worker_is_free():
    graph = {"a": (), "slow": (), "b": ("a",), "c": ("b",), "d": ("slow",)}
    durations = {"a": 1, "slow": 8, "b": 1, "c": 1, "d": 1}
    started = []

    def start(task):
        started.append(task)
        return FakeProcess(0, durations[task])

    codes = engine.schedule(graph, start, workers=2)
    assert codes == dict.fromkeys(graph, 0)
    # b and c ran beside the slow task: no wave waited for it
    assert started.index("c") < started.index("d")


def test_a_failed_task_skips_what_waits_for_it_and_nothing_else():
    graph = {"a": (), "b": ("a",), "c": ("b",), "x": ()}
    codes = engine.schedule(graph, lambda t: FakeProcess(1 if t == "a" else 0, 1), 2)
    assert codes == {"a": 1, "b": None, "c": None, "x": 0}


def test_simnpo_test_runs_wait_for_its_development_runs():
    graph = tofu_groups.task_graph(tofu_groups.GroupsProtocol())
    dev = [t for t in graph if t.startswith("run:authors198-199:")]
    assert sorted(dev) == ["run:authors198-199:simnpo_lr1e-03", "run:authors198-199:simnpo_lr3e-03"]
    simnpo = [t for t in graph if t.endswith(":simnpo")]
    assert len(simnpo) == 5 and all(set(dev) <= set(graph[t]) for t in simnpo)
    runs = [t for t in graph if t.startswith("run:") and t not in dev]
    assert len(runs) == 35


def ks_p(a, b) -> float:
    return stats.ks_2samp(a, b).pvalue


def test_the_group_difference_is_log10_of_the_best_fqs():
    rng = np.random.default_rng(3)
    reference = rng.uniform(0.2, 0.8, 40)
    tif = {"tif-learned": reference + 0.05, "tif-graddiff": reference + 0.3}
    base = {"npo": reference + 0.2, "ga": reference + 0.4}
    group = report.GroupPoints("g", reference, tif, base)
    best_tif = max(ks_p(reference + 0.05, reference), ks_p(reference + 0.3, reference))
    best_base = max(ks_p(reference + 0.2, reference), ks_p(reference + 0.4, reference))
    assert report.difference(group) == pytest.approx(np.log10(best_tif) - np.log10(best_base))
    assert report.difference(group) > 0


def test_the_verdict_follows_the_sign_of_the_interval():
    assert report.verdict(0.01, 0.5).startswith("the TIF family wins")
    assert report.verdict(-0.5, -0.01).startswith("the baselines win")
    assert report.verdict(-0.1, 0.3).startswith("a tie")


def test_the_bootstrap_interval_excludes_zero_only_for_a_clear_difference():
    rng = np.random.default_rng(0)
    groups = []
    for i in range(5):
        reference = rng.uniform(0.2, 0.8, 40)
        tif = {"t": reference + rng.normal(0, 0.01, 40)}  # nearly the retain model
        base = {"b": reference + 0.25}  # far from it
        groups.append(report.GroupPoints(str(i), reference, tif, base))
    clear = report.statistic(groups, draws=200)
    assert clear["ci95"][0] > 0 and clear["verdict"].startswith("the TIF family wins")
    assert clear["groups_tif_ahead"] == 5
    same = [report.GroupPoints(g.label, g.reference, g.tif, g.tif) for g in groups]
    tie = report.statistic(same, draws=200)
    assert tie["D"] == 0 and tie["verdict"].startswith("a tie")


def test_the_answer_length_is_the_shortest_that_truncates_under_two_percent():
    # 100 answers: 2 longer than 64 tokens (2 %: not under 2 %), 1 longer than 96
    lengths = [10] * 97 + [70] + [80] + [100]
    assert tofu_eval.shortest_length(lengths) == (96, 0.01)
    assert tofu_eval.shortest_length([10] * 99 + [70]) == (64, 0.01)
    assert tofu_eval.shortest_length([300] * 10) == (200, 1.0)
