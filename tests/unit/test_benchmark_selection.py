"""How the efficacy benchmarks pick a run's point (benchmarks/selection.py, probes.py): the order in which
epochs get a full evaluation decides which point a method is credited with."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
selection = pytest.importorskip("selection")
probes = pytest.importorskip("probes")
cache = pytest.importorskip("cache")
report = pytest.importorskip("report")


def point(epoch, fq, proxy):
    return {"epoch": epoch, "fq": fq, "mu_proxy": proxy}


def test_walk_visits_best_forget_quality_first_whatever_the_proxy_says():
    # epoch 3 has the best FQ but a proxy below any plausible floor: it is still tried first,
    # because the proxy has been wrong in both directions.
    points = [point(1, 0.01, 0.41), point(2, 0.05, 0.40), point(3, 0.20, 0.10)]
    assert [p["epoch"] for p in selection.walk_order(points, "fq", "mu_proxy")] == [3, 2, 1]


def test_walk_breaks_forget_quality_ties_by_the_higher_proxy():
    points = [point(4, 0.05, 0.38), point(5, 0.05, 0.39), point(6, 0.05, 0.37), point(7, 0.1, 0.3)]
    assert [p["epoch"] for p in selection.walk_order(points, "fq", "mu_proxy")] == [7, 5, 4, 6]


def test_walk_keeps_every_epoch():
    points = [point(e, 0.01 * (e % 3), 0.4 - 0.01 * e) for e in range(1, 11)]
    order = selection.walk_order(points, "fq", "mu_proxy")
    assert sorted(p["epoch"] for p in order) == list(range(1, 11))


def test_epoch_ends_follow_the_floor_step_count():
    # forget01 (40 samples), effective batch 32, 10 epochs: floor(e * 40 / 32) steps.
    ends = probes.epoch_end_steps(40, 32, 10)
    assert ends == {1: 1, 2: 2, 3: 3, 5: 4, 6: 5, 7: 6, 8: 7, 10: 8, 11: 9, 12: 10}


def test_a_probe_is_computed_once_per_checkpoint_weights(tmp_path):
    # a run restarted after an interruption retrains to the same weights: its probes are reused;
    # other weights (or another recipe) are probed again
    checkpoint = tmp_path / "epoch1"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"weights one")
    calls = []

    def compute():
        calls.append(1)
        return {"probes": len(calls)}

    def probed(lr):
        return cache.cached_probe(tmp_path, "run", checkpoint, {"lr": lr}, compute)

    first, again = probed(1e-4), probed(1e-4)
    assert first == again == {"probes": 1}
    assert (tmp_path / "probe" / "run.epoch1.json").is_file()
    assert probed(3e-4) == {"probes": 2}
    (checkpoint / "model.safetensors").write_bytes(b"weights two")
    assert probed(3e-4) == {"probes": 3}


def family(score, utility=0.4):
    return {"fq": score, "mu": utility}


def test_the_tif_family_wins_only_on_the_frontier_and_ahead_of_every_baseline():
    summary = {"tif": family(0.27), "tif-npo": family(0.05), "npo": family(0.03), "ga": None}
    v = selection.verdict(summary, ["tif"], "fq", higher_is_better=True)
    assert v["tif_family_wins"] and v["winners"] == ["tif"]
    assert (v["best_tif_family"], v["best_baseline"]) == ("tif", "npo")
    assert v["families_without_a_point"] == ["ga"]
    # ahead of the baselines' best but not on the frontier: no win
    assert not selection.verdict(summary, ["npo"], "fq", higher_is_better=True)["tif_family_wins"]
    # a tie with the best baseline is no win
    tie = {"tif": family(0.03), "npo": family(0.03)}
    assert not selection.verdict(tie, ["tif", "npo"], "fq", True)["tif_family_wins"]


def test_the_verdict_on_a_lower_is_better_score():
    summary = {"tif": family(0.20), "tif-npo": family(0.10), "npo": family(0.15)}
    v = selection.verdict(summary, ["tif-npo", "tif"], "fq", higher_is_better=False)
    assert v["winners"] == ["tif-npo"] and v["best_tif_family"] == "tif-npo"
    assert "tif-npo on the Pareto frontier" in selection.verdict_line(v)
    worse = selection.verdict({"tif": family(0.2), "npo": family(0.1)}, ["npo"], "fq", False)
    assert not worse["tif_family_wins"]
    assert "no TIF-family setting" in selection.verdict_line(worse)


def finished(fq):
    """A run's cached result whose chosen point has Forget Quality ``fq`` (None: no point kept
    the floor)."""
    return {"chosen": None if fq is None else {"epoch": 3, "forget_quality": fq}}


def test_second_seeds_start_only_for_families_whose_settings_have_all_run():
    first_runs = ["tif_lr1e-04", "tif_lr3e-04", "ga_lr1e-04", "ga_lr3e-04"]
    runs = {"tif_lr1e-04": finished(0.1), "tif_lr3e-04": finished(0.3), "ga_lr1e-04": finished(0.2)}
    ready = selection.complete_families(["tif", "ga"], first_runs, runs)
    assert ready == ["tif"]
    assert selection.second_seeds(ready, runs, "forget_quality", True) == ["tif_lr3e-04_seed1"]


def test_the_best_setting_ignores_runs_without_a_point_and_second_seeds():
    runs = {
        "ga_lr1e-04": finished(0.2),
        "ga_lr3e-04": finished(None),
        "ga_lr1e-04_seed1": finished(0.9),
    }
    assert selection.best_setting("ga", runs, "forget_quality", True) == "ga_lr1e-04"
    assert selection.best_setting("ga", runs, "forget_quality", False) == "ga_lr1e-04"
    assert selection.best_setting("tif", runs, "forget_quality", True) is None


def test_family_summary_is_the_mean_of_both_seeds_of_the_best_setting():
    runs = {
        "ga_lr1e-04": finished(0.2),
        "ga_lr3e-04": finished(0.1),
        "ga_lr1e-04_seed1": finished(0.4),
    }
    keys, finetuned = {"fq": "forget_quality"}, {"forget_quality": 0.01}
    summary = selection.family_summary(["ga"], runs, keys, True, finetuned)["ga"]
    assert summary["fq"] == pytest.approx(0.3)
    assert summary["run"] == "ga_lr1e-04" and summary["setting"] == "lr=0.0001"
    assert [s["fq"] for s in summary["seeds"]] == [0.2, 0.4]


def test_a_seed_without_a_point_counts_as_the_fine_tuned_model():
    # MUSE v2 left such a seed out of GradDiff's mean (issue 33)
    runs = {"ga_lr1e-04": finished(0.2), "ga_lr1e-04_seed1": finished(None)}
    keys, finetuned = {"fq": "forget_quality"}, {"forget_quality": 0.01}
    summary = selection.family_summary(["ga"], runs, keys, True, finetuned)["ga"]
    assert summary["fq"] == pytest.approx((0.2 + 0.01) / 2)
    assert summary["seeds"][1] == {"fq": 0.01, "epoch": 0}


def test_every_family_gets_its_own_colour_and_its_own_marker():
    # TOFU-mini has 11 families: tab10 alone gave TIF and tif-learned the same blue.
    families = [f"family{i}" for i in range(13)]
    styles = report.family_styles(families)
    assert len({colour for colour, _ in styles.values()}) == 13
    assert len({marker for _, marker in styles.values()}) == 13
    assert all(0 <= colour < 20 for colour, _ in styles.values())
