"""The cached reference under DeepSpeed: the Trainer casts floating inputs to the engine's dtype
(``Trainer._prepare_input``); the cached reference values must stay float32 through it, and
under pure-bf16 DeepSpeed they are computed by the bf16 model that DeepSpeed will train."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from conftest import QA_PAIRS
from tif_unlearn.config import UnlearnConfig
from tif_unlearn.data.batches import UnlearnCollator
from tif_unlearn.data.records import QARecord
from tif_unlearn.methods.base import SEQ_LOGP, TOKEN_LOGITS, reference_values
from tif_unlearn.train.streams import build_streams, deepspeed_bf16
from tif_unlearn.train.trainer import UnlearnTrainer

DEEPSPEED_ENV = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_MIXED_PRECISION": "bf16"}


def deepspeed_like_trainer() -> UnlearnTrainer:
    """An UnlearnTrainer with only what ``_prepare_input`` reads, set as DeepSpeed bf16 sets it."""
    trainer = UnlearnTrainer.__new__(UnlearnTrainer)
    trainer.args = SimpleNamespace(device=torch.device("cpu"))
    trainer.is_deepspeed_enabled = True
    ds_config = SimpleNamespace(dtype=lambda: torch.bfloat16)
    plugin = SimpleNamespace(hf_ds_config=ds_config)
    trainer.accelerator = SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin))
    return trainer


def test_the_trainer_keeps_cached_reference_values_in_float32_under_deepspeed():
    # -150.3: bf16 has 8 significant bits, so between 128 and 256 its values are 1 apart
    # (-150.3 -> -150.0); 7.1234 -> 7.125 (steps of 1/32 between 4 and 8).
    forget = {
        "input_ids": torch.tensor([[5, 6, 7]]),
        "ref_token_values": torch.tensor([[0.0, 7.1234, -3.3333]]),
        "ref_seq_logp": torch.tensor([-150.3]),
        "other_float": torch.tensor([1.2345]),
    }
    prepared = deepspeed_like_trainer()._prepare_inputs({"forget": forget})["forget"]
    assert prepared["ref_token_values"].dtype == torch.float32
    assert prepared["ref_seq_logp"].dtype == torch.float32
    assert prepared["ref_seq_logp"].item() == pytest.approx(-150.3, abs=1e-5)
    assert prepared["ref_token_values"][0, 1].item() == pytest.approx(7.1234, abs=1e-6)
    # everything else is handled as the Trainer handles it
    assert prepared["other_float"].dtype == torch.bfloat16
    assert prepared["input_ids"].dtype == torch.long


@pytest.mark.parametrize(
    ("env", "bf16", "expected"),
    [
        (DEEPSPEED_ENV, True, True),
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, True, True),
        # --bf16 makes the Trainer ask DeepSpeed for bf16 whatever accelerate's own setting
        ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_MIXED_PRECISION": "no"}, True, True),
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, False, False),
        ({"ACCELERATE_USE_DEEPSPEED": "false", "ACCELERATE_MIXED_PRECISION": "bf16"}, True, False),
        ({}, True, False),
    ],
)
def test_pure_bf16_deepspeed_is_recognised(env, bf16, expected):
    assert deepspeed_bf16(env, bf16) is expected


@pytest.mark.parametrize("kind", [TOKEN_LOGITS, SEQ_LOGP])
def test_under_deepspeed_bf16_the_cache_comes_from_the_bf16_model(
    tiny_model, tokenizer, monkeypatch, kind
):
    for name, value in DEEPSPEED_ENV.items():
        monkeypatch.setenv(name, value)
    records = [QARecord(p["question"], p["answer"]) for p in QA_PAIRS]
    config = UnlearnConfig(out="out-model", forget="forget.jsonl", bf16=True, batch_size=2)
    streams = build_streams(tiny_model, tokenizer, {"forget": records}, config, {"forget": kind})
    # DeepSpeed's bf16 engine trains these weights as bf16, without autocast: so does the cache.
    assert next(tiny_model.parameters()).dtype == torch.bfloat16
    batch = UnlearnCollator(tokenizer.pad_token_id)([{"forget": e} for e in streams["forget"]])
    live = reference_values(tiny_model, batch["forget"], kind)  # the bf16 model, no autocast
    for key, value in live.items():
        assert torch.allclose(batch["forget"][key], value.float(), atol=1e-6), key


@pytest.mark.parametrize(
    ("env", "dtype", "expected"),
    [(DEEPSPEED_ENV, "float32", "bfloat16"), ({}, "float32", "float32")],
)
def test_under_deepspeed_bf16_the_weights_are_loaded_in_bf16(monkeypatch, env, dtype, expected):
    # DeepSpeed casts them to bf16 anyway: loading them so halves every rank's host memory
    from tif_unlearn.train.streams import training_load_dtype

    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = UnlearnConfig(out="out-model", forget="forget.jsonl", dtype=dtype, bf16=True)
    assert training_load_dtype(config) == expected
