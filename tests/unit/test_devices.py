"""--device: auto picks a visible GPU, else the CPU; a GPU that is not there fails in one line;
evaluation reports where it ran."""

from __future__ import annotations

import pytest

from tif_unlearn.devices import on_device, pick_device
from tif_unlearn.errors import TifError
from tif_unlearn.train.precision import EvalPrecision, apply_eval_precision


@pytest.mark.parametrize(
    ("requested", "cuda", "expected"),
    [
        ("auto", True, "cuda"),
        ("auto", False, "cpu"),
        ("cpu", True, "cpu"),
        ("cuda", True, "cuda"),
        ("cuda:1", True, "cuda:1"),
    ],
)
def test_pick_device(requested, cuda, expected):
    assert pick_device(requested, cuda_available=cuda) == expected


@pytest.mark.parametrize("requested", ["cuda", "cuda:0"])
def test_a_gpu_that_is_not_there_is_refused(requested):
    with pytest.raises(TifError, match="no CUDA GPU is visible"):
        pick_device(requested, cuda_available=False)


@pytest.mark.parametrize("requested", ["gpu", "cuda:x", "mps0", ""])
def test_an_unknown_device_is_refused(requested):
    with pytest.raises(TifError, match="--device must be"):
        pick_device(requested, cuda_available=True)


def test_on_the_cpu_the_model_is_not_moved():
    class Model:
        def to(self, device):
            raise AssertionError("moved")

    model, tokenizer = Model(), object()
    assert on_device((model, tokenizer), "cpu") == (model, tokenizer)


def test_evaluation_precision_gives_a_device_and_a_dtype_that_agree(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("tif_unlearn.train.precision.cpu_has_fast_bf16", lambda: False)
    assert apply_eval_precision(EvalPrecision()) == ("float32", "cpu")
    with pytest.raises(TifError, match="no CUDA GPU"):
        apply_eval_precision(EvalPrecision(device="cuda"))
