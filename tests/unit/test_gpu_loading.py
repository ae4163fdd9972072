"""Where training loads the weights (issue 36: once per node, not per rank): straight onto the
process's device through ``from_pretrained(device_map=...)``, whichever way the model is read
(cast tensor by tensor or in its stored dtype); under ZeRO-3 an unlearning run still loads the
whole model on its device (it caches the reference values before DeepSpeed shards it), a
fine-tuning run loads on the CPU for DeepSpeed to shard. transformers' real loader runs here;
it is only watched, to see what it was asked. On this CPU machine the process's device is the
CPU, so the map names it."""

from __future__ import annotations

import pytest
import torch
from transformers import PreTrainedModel

from tif_unlearn.config.schema import FinetuneConfig, UnlearnConfig
from tif_unlearn.models import load_model
from tif_unlearn.train.orchestrate import load_training_model

ZERO3 = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}


@pytest.fixture
def loads(monkeypatch) -> list[dict]:
    """The keyword arguments of every ``from_pretrained`` of a model class (the real one runs)."""
    seen: list[dict] = []
    real = PreTrainedModel.from_pretrained.__func__

    def watched(cls, *args, **kwargs):
        seen.append(kwargs)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(watched))
    return seen


def on_one_device(model) -> set:
    return {p.device for p in model.parameters()}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])  # stored float32: read as is / cast
def test_a_model_loads_straight_onto_the_device_it_is_asked_for(tiny_model_dir, loads, dtype):
    model, _ = load_model(str(tiny_model_dir), dtype=dtype, device="cpu")
    assert [kwargs.get("device_map") for kwargs in loads] == [{"": "cpu"}]
    assert on_one_device(model) == {torch.device("cpu")}
    assert {p.dtype for p in model.parameters()} == {getattr(torch, dtype)}
    # no device map kept (transformers 5 keeps one for several devices only): with one, the
    # Trainer would take the model for a spread-out one and not move it
    assert getattr(model, "hf_device_map", None) is None


def test_without_a_device_transformers_loads_on_the_cpu_as_before(tiny_model_dir, loads):
    load_model(str(tiny_model_dir), dtype="bfloat16")
    assert "device_map" not in loads[0]


def test_the_same_weights_whichever_way_they_are_loaded(tiny_model_dir):
    plain, _ = load_model(str(tiny_model_dir), dtype="bfloat16")
    placed, _ = load_model(str(tiny_model_dir), dtype="bfloat16", device="cpu")
    for (name, a), (_, b) in zip(
        plain.state_dict().items(), placed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def unlearn_config(model: str, tmp_path) -> UnlearnConfig:
    return UnlearnConfig(model=model, forget="f.jsonl", out=str(tmp_path / "out"), bf16=True)


def test_under_zero3_unlearning_loads_the_whole_model_in_bf16_on_its_device(
    tiny_model_dir, tmp_path, loads, monkeypatch
):
    for key, value in ZERO3.items():
        monkeypatch.setenv(key, value)
    config = unlearn_config(str(tiny_model_dir), tmp_path)
    model, _ = load_training_model(config, "bf16", caches_reference=True)
    # DeepSpeed bf16: the weights as DeepSpeed will train them, the whole model (no
    # zero.Init: the reference values are cached before DeepSpeed shards it), on the device
    assert [(kwargs["dtype"], kwargs.get("device_map")) for kwargs in loads] == [
        (torch.bfloat16, {"": "cpu"})
    ]
    assert sum(p.numel() for p in model.parameters()) > 0 and model.device.type == "cpu"


def test_under_zero3_fine_tuning_leaves_the_placement_to_deepspeed(
    tiny_model_dir, tmp_path, loads, monkeypatch
):
    for key, value in ZERO3.items():
        monkeypatch.setenv(key, value)
    config = FinetuneConfig(
        model=str(tiny_model_dir), data="d.jsonl", out=str(tmp_path / "o"), dtype="float32"
    )
    load_training_model(config, "fp32", caches_reference=False)
    assert "device_map" not in loads[0]
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")  # ZeRO-2: whole weights per GPU
    load_training_model(config, "fp32", caches_reference=False)
    assert loads[1]["device_map"] == {"": "cpu"}
