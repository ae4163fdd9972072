"""`tif eval` and the model-based identifiers run on the GPU when there is one: load_model
leaves a model on the CPU, and they move it (CUDA faked here: the move is recorded, not done)."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlamaForCausalLM

from conftest import QA_PAIRS, write_jsonl
from eval_data import write_tofu_folder
from tif_unlearn.cli.app import main


@pytest.fixture
def fake_gpu(monkeypatch) -> list[str]:
    """CUDA reported available; every ``LlamaForCausalLM.to(...)`` recorded (the model stays)."""
    moves: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        LlamaForCausalLM, "to", lambda self, *args, **kw: moves.append(args[0]) or self
    )
    return moves


def test_a_cpu_model_goes_to_the_gpu(fake_gpu, tiny_model):
    from tif_unlearn.models import on_eval_device

    assert on_eval_device(tiny_model) is tiny_model
    assert fake_gpu == ["cuda"]


def test_without_a_gpu_the_model_stays(tiny_model):
    from tif_unlearn.models import on_eval_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert on_eval_device(tiny_model) is tiny_model
    assert next(tiny_model.parameters()).device.type == "cpu"


def test_eval_tofu_evaluates_on_the_gpu(fake_gpu, tiny_model_dir, tmp_path):
    data = write_tofu_folder(tmp_path / "tofu")
    out = tmp_path / "results.json"
    argv = ["eval", "tofu", "--model", tiny_model_dir, "--data-dir", data, "--dtype", "float32"]
    argv += ["--max-items", "2", "--max-new-tokens", "4", "--out", out]
    assert main([str(a) for a in argv]) == 0
    assert fake_gpu == ["cuda"]
    assert "device" in json.loads(out.read_text())


def test_contrast_identifier_loads_both_models_to_the_gpu(fake_gpu, tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "forget.jsonl", QA_PAIRS[:2])
    argv = ["identify", "--identifier", "contrast", "--model", tiny_model_dir]
    argv += ["--reference", tiny_model_dir, "--data", data, "--out", tmp_path / "uw.jsonl"]
    assert main([str(a) for a in argv]) == 0
    assert fake_gpu == ["cuda", "cuda"]
