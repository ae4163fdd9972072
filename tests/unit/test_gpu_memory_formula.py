"""benchmarks/gpu_memory.py: the caching peak (the whole weights, one reference batch of
logits, one weight's autocast copy; bf16 weights under DeepSpeed) on hand-computed numbers,
and a model's shape read from its config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
gpu_memory = pytest.importorskip("gpu_memory")

ARCH = gpu_memory.Arch(params=1000.0, layers=2, hidden=8, intermediate=16, kv=4, vocab=50)


def test_caching_peak_under_autocast():
    s = gpu_memory.Scenario("s", "x", batch=2, length=10, reference_batch=3)
    # weights 1000 x 4 = 4000; logits 3 x 10 x 50 x 2 (bf16) = 3000, one sample's float32
    # logsumexp input 10 x 50 x 4 = 2000; one bf16 weight copy at a time, the largest:
    # vocab x hidden x 2 = 800. Total 9800 (not + 1000 x 2 for a copy of every weight).
    assert gpu_memory.estimate(s, ARCH)["bytes"]["reference_caching"] == 9800


def test_caching_peak_in_float32_and_under_deepspeed_bf16():
    fp32 = gpu_memory.Scenario("s", "x", precision="float32", length=10, reference_batch=3)
    # 1000 x 4 + 3 x 10 x 50 x 4 + 10 x 50 x 4 = 4000 + 6000 + 2000, no autocast copy
    assert gpu_memory.estimate(fp32, ARCH)["bytes"]["reference_caching"] == 12000
    zero3 = gpu_memory.Scenario("s", "x", length=10, reference_batch=3, gpus=8)
    # bf16 weights 2000 + bf16 logits 3000 + 2000, no autocast: 7000
    assert gpu_memory.estimate(zero3, ARCH)["bytes"]["reference_caching"] == 7000


def test_the_peak_is_the_larger_of_training_and_caching():
    s = gpu_memory.Scenario("s", "x", batch=1, length=10, reference_batch=64)
    gib = gpu_memory.estimate(s, ARCH)["gib_per_gpu"]
    assert gib["peak"] == max(gib["total"], gib["reference_caching"])


def test_a_models_shape_from_its_config():
    from transformers import LlamaConfig

    config = LlamaConfig(
        vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    arch = gpu_memory.arch_from_config(config, 12345)
    # kv = 2 key/value heads x (64 / 4) head dim = 32
    assert arch == gpu_memory.Arch(12345.0, 3, 64, 128, 32, 100)
