"""`tif eval tofu --retain-model`: the retain model is freed before the evaluated model loads
(two models on one GPU would double the memory evaluation needs)."""

from __future__ import annotations

import json
import weakref

from tif_unlearn.cli import main


class FakeModel:
    def to(self, device):
        return self


def test_the_retain_model_is_gone_before_the_evaluated_model_loads(monkeypatch, tmp_path):
    alive: list[weakref.ref] = []
    seen_alive_at_load: list[int] = []

    def load_model(spec, dtype="float32", **kwargs):
        seen_alive_at_load.append(sum(ref() is not None for ref in alive))
        model = FakeModel()
        alive.append(weakref.ref(model))
        return model, object()

    monkeypatch.setattr("tif_unlearn.models.load_model", load_model)
    monkeypatch.setattr("tif_unlearn.evaluate.tofu_data.check_eval_data", lambda *a: None)
    monkeypatch.setattr(
        "tif_unlearn.evaluate.tofu.reference_from_model", lambda *a: {"retain": "numbers"}
    )
    monkeypatch.setattr(
        "tif_unlearn.evaluate.tofu.evaluate_tofu",
        lambda model, tok, options, reference: {"summary": {}, "reference": reference},
    )
    monkeypatch.setattr("tif_unlearn.evaluate.tofu_metrics.summary_table", lambda r: "table")
    out = tmp_path / "results.json"
    argv = ["eval", "tofu", "--model", "unlearned", "--retain-model", "retain", "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 0
    assert seen_alive_at_load == [0, 0]  # no model alive when the evaluated one loads
    assert json.loads(out.read_text())["reference"] == {"retain": "numbers"}
