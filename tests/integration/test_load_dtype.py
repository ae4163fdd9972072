"""Loading float32 weights in another dtype: the weights are cast as they are read, so the
load never holds the float32 file beside the cast copy (bf16 peak memory below fp32's), and
the model is the one ``from_pretrained`` gives."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tif_unlearn.models import load_model

# Peak RSS of a second load, after a first one has imported everything: a fresh process
# loads the tiny model once (warm-up), resets its peak (/proc/self/clear_refs 5), loads the
# big one in bfloat16 and prints the growth of its peak over what it held before.
PEAK_SCRIPT = textwrap.dedent(
    """
    import gc, sys
    from tif_unlearn.models import load_model

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    load_model(sys.argv[1], dtype="bfloat16")
    gc.collect()
    open("/proc/self/clear_refs", "w").write("5")
    before = status("VmRSS")
    model, _ = load_model(sys.argv[2], dtype="bfloat16")
    print(status("VmHWM") - before)
    """
)


def save_llama(folder, tokenizer, **sizes) -> None:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=256, **sizes)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def tied_model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tied-llama")
    save_llama(
        folder, tokenizer, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
    )  # fmt: skip
    return folder


@pytest.mark.parametrize("dtype", ["bfloat16", "float64"])
def test_weights_cast_on_load_equal_the_float32_weights_cast(tied_model_dir, dtype):
    reference, _ = load_model(str(tied_model_dir), dtype="float32")
    model, _ = load_model(str(tied_model_dir), dtype=dtype)
    expected = {name: p.to(getattr(torch, dtype)) for name, p in reference.named_parameters()}
    assert {name: p.dtype for name, p in model.named_parameters()} == {
        name: getattr(torch, dtype) for name in expected
    }
    for name, param in model.named_parameters():
        assert torch.equal(param, expected[name]), name
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    assert model.generation_config.to_dict() == reference.generation_config.to_dict()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_bf16_load_never_holds_the_float32_weights(tmp_path, tiny_model_dir, tokenizer):
    big = tmp_path / "big"
    save_llama(
        big, tokenizer, hidden_size=512, intermediate_size=1536, num_hidden_layers=6,
        num_attention_heads=8, num_key_value_heads=8, tie_word_embeddings=False,
    )  # fmt: skip
    fp32_bytes = (big / "model.safetensors").stat().st_size  # ~80 MB
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, str(tiny_model_dir), str(big)],
        capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    growth = int(out.stdout.split()[-1])
    # kept: the bf16 weights (fp32_bytes / 2) and a few fp32 tensors in flight; mapping the
    # file while casting (the old load) added all of its fp32_bytes on top: ~1.5x
    assert growth < 0.9 * fp32_bytes, (growth, fp32_bytes)
