"""The identifiers that run models (contrast, the local llm) load them in bfloat16 on a bf16 GPU
by default (an 8B target and reference in float32 would need 64 GB), and take --device/--dtype."""

from __future__ import annotations

import pytest

from tif_unlearn.cli.identify import IdentifyArgs, identifier_options
from tif_unlearn.errors import TifError


class FakeModel:
    def __init__(self, loads: list, spec: str, dtype: str):
        self.loads, self.spec = loads, spec
        loads.append({"spec": spec, "dtype": dtype, "device": "cpu"})

    def to(self, device):
        self.loads[-1]["device"] = str(device)
        return self

    def eval(self):
        return self


@pytest.fixture
def loads(monkeypatch) -> list:
    """Every model load as {spec, dtype, device}, on a machine that looks like a bf16 GPU's."""
    loads: list = []
    tokenizer = object()

    def load_model(spec, dtype="float32", **kwargs):
        return FakeModel(loads, spec, dtype), tokenizer

    monkeypatch.setattr("tif_unlearn.models.load_model", load_model)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.is_bf16_supported", lambda *a, **k: True)
    return loads


def test_contrast_loads_both_models_in_bf16_on_the_gpu_by_default(loads):
    from tif_unlearn.identify.contrast import identify_contrast

    identify_contrast([], target="target-model", reference="base-model", progress=False)
    assert loads == [
        {"spec": "target-model", "dtype": "bfloat16", "device": "cuda"},
        {"spec": "base-model", "dtype": "bfloat16", "device": "cuda"},
    ]


def test_contrast_takes_a_device_and_a_dtype(loads):
    from tif_unlearn.identify.contrast import identify_contrast

    identify_contrast([], target="t", reference="r", device="cpu", dtype="float32")
    assert {(d["device"], d["dtype"]) for d in loads} == {("cpu", "float32")}


def test_the_local_llm_loads_in_bf16_on_the_gpu_by_default(loads):
    from tif_unlearn.identify.llm_backends import HFChatBackend

    HFChatBackend("chat-model")
    assert loads == [{"spec": "chat-model", "dtype": "bfloat16", "device": "cuda"}]


def test_the_command_line_passes_device_and_dtype_as_decided_here(loads, monkeypatch):
    monkeypatch.setattr("tif_unlearn.train.precision.cpu_has_fast_bf16", lambda: False)
    args = IdentifyArgs(identifier="contrast", model="t", reference="r", device="cpu")
    assert identifier_options(args) == {
        "target": "t",
        "reference": "r",
        "device": "cpu",
        "dtype": "float32",  # auto on a CPU without fast bf16
    }
    local = IdentifyArgs(identifier="llm", device="auto", dtype="auto")
    assert identifier_options(local) == {
        "model_name": "smollm2-135m",
        "device": "cuda",
        "dtype": "bfloat16",
    }
    with pytest.raises(TifError, match="--dtype must be one of"):
        identifier_options(IdentifyArgs(identifier="llm", dtype="int8"))
