"""An efficacy run cut short resumes (benchmarks/probes.py): ``train_with_probes`` run again
after an interruption continues from the last training checkpoint and returns the trajectory
and final weights of the uninterrupted run, with the epochs probed before the cut read from the
probe cache (tiny model, 4 epochs of 8 steps)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import QA_PAIRS, UNWANTED, annotate, write_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
probes = pytest.importorskip("probes")

EPOCHS = 4


class Interrupted(Exception):
    """Stands for the session's end in the middle of a run."""


@dataclass
class Protocol:
    epochs: int = EPOCHS

    def recipe(self) -> dict:
        return {"epochs": self.epochs}


class WeightSpec:
    """A benchmark spec whose probe reads one weight sum (and counts its calls); it can
    interrupt the run at its n-th probe."""

    def __init__(self, interrupt_at: int | None = None):
        self.interrupt_at, self.calls = interrupt_at, 0

    def unlearn_fields(self, p, name, files, target) -> dict:
        return {
            "model": str(target), "method": "tif", "forget": str(files["forget"]),
            "retain": str(files["retain"]), "epochs": float(p.epochs), "lr": 1e-3, "seed": 0,
            "batch_size": 2, "dtype": "float64",
        }  # fmt: skip

    def probe(self, p, model, tokenizer, files, reference) -> dict:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise Interrupted
        return {"weight_sum": float(sum(w.double().sum() for w in model.parameters()))}


@pytest.fixture
def work(tmp_path, tiny_model_dir) -> tuple[Path, dict]:
    shutil.copytree(tiny_model_dir, tmp_path / "finetuned")
    files = {
        "forget": write_jsonl(tmp_path / "forget.jsonl", [
            annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)
        ] * 4),
        "retain": write_jsonl(tmp_path / "retain.jsonl", QA_PAIRS[::-1] * 2),
    }  # fmt: skip
    return tmp_path, files


def run(spec, work_dir: Path, files: dict, folder: Path) -> list[dict]:
    return probes.train_with_probes(
        spec, Protocol(), "tif_lr1e-03_s0", files, work_dir, folder, None
    )


def test_an_interrupted_run_resumes_to_the_uninterrupted_trajectory(work, tmp_path_factory):
    work_dir, files = work
    reference_dir = tmp_path_factory.mktemp("reference")
    shutil.copytree(work_dir / "finetuned", reference_dir / "finetuned")
    reference = run(WeightSpec(), reference_dir, files, reference_dir / "checkpoints")
    assert [point["epoch"] for point in reference] == [1, 2, 3, 4]

    folder = work_dir / "checkpoints"
    with pytest.raises(Interrupted):
        run(WeightSpec(interrupt_at=3), work_dir, files, folder)
    assert probes.resumable(work_dir / "unlearned" / "tif_lr1e-03_s0")
    saved_before = {
        e: (folder / f"epoch{e}" / "model.safetensors").stat().st_mtime_ns for e in (1, 2)
    }

    resumed_spec = WeightSpec()
    resumed = run(resumed_spec, work_dir, files, folder)

    assert resumed_spec.calls == 2  # epochs 3 and 4 trained and probed again; 1, 2 cached
    saved_after = {
        e: (folder / f"epoch{e}" / "model.safetensors").stat().st_mtime_ns for e in (1, 2)
    }
    assert saved_after == saved_before  # epochs 1 and 2 were not trained again
    assert [p["weight_sum"] for p in resumed] == pytest.approx(
        [p["weight_sum"] for p in reference], rel=1e-12
    )
    final = load_file(folder / "epoch4" / "model.safetensors")
    expected = load_file(reference_dir / "checkpoints" / "epoch4" / "model.safetensors")
    assert max((final[k] - expected[k]).abs().max().item() for k in final) < 1e-10
    assert not probes.resumable(work_dir / "unlearned" / "tif_lr1e-03_s0")  # cleaned up
