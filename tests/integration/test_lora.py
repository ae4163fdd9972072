"""LoRA (--lora-r) and gradient checkpointing on the tiny model, through `tif unlearn`."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import FLOAT64_WEIGHT_ATOL, LOGGED_LOSS_RTOL
from tif_unlearn.cli.app import main
from tif_unlearn.models import load_model
from tif_unlearn.train import output
from tif_unlearn.train.precision import autocast

STEPS = 6


@pytest.fixture
def saved_models(monkeypatch) -> list:
    """Every model object handed to save_model (the real save still runs)."""
    seen: list = []
    real_save = output.save_model

    def recording_save(model, *args, **kwargs):
        seen.append(model)
        return real_save(model, *args, **kwargs)

    monkeypatch.setattr(output, "save_model", recording_save)
    return seen


def _unlearn(model_dir, forget, out, *extra) -> int:
    args = ["unlearn", "--model", str(model_dir), "--forget", str(forget), "--out", str(out)]
    args += ["--max-steps", str(STEPS), "--batch-size", "2", "--lr", "5e-3", "--warmup-epochs", "0"]
    return main([*args, "--scheduler", "constant", "--per-sample", *extra])


def _logits(model, tokenizer) -> torch.Tensor:
    batch = tokenizer(["Where was Basil born? Basil was born in Kuwait City."], return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits.float()  # bf16 under autocast


def _losses(out) -> list[float]:
    log = json.loads((out / "tif_run.json").read_text())["log"]
    return [entry["loss"] for entry in log if "loss" in entry]


def test_lora_trains_only_the_adapters(tiny_model_dir, qa_files, tmp_path, saved_models):
    out = tmp_path / "adapter"
    assert _unlearn(tiny_model_dir, qa_files["forget"], out, "--lora-r", "4") == 0
    (model,) = saved_models
    base_before = load_file(str(tiny_model_dir / "model.safetensors"))
    base_after = {
        key.replace(".base_layer", ""): weight
        for key, weight in model.get_base_model().state_dict().items()
        if "lora_" not in key
    }
    lora_b = {k: v for k, v in model.named_parameters() if "lora_B" in k}
    assert lora_b and all(v.abs().max() > 0 for v in lora_b.values())  # B starts at 0
    assert {k for k, v in model.named_parameters() if v.requires_grad} == {
        k for k, _ in model.named_parameters() if "lora_" in k
    }
    assert base_after.keys() == base_before.keys()
    for name, weight in base_before.items():
        assert torch.equal(base_after[name], weight), name
    losses = _losses(out)
    assert len(losses) == STEPS and losses[-1] < losses[0]


def test_adapter_folder_loads_back_with_peft(tiny_model_dir, qa_files, tmp_path, saved_models, cpu):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    assert _unlearn(tiny_model_dir, qa_files["forget"], out, "--lora-r", "4") == 0
    assert {"adapter_config.json", "adapter_model.safetensors", "tif_run.json"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / "config.json").exists()
    assert json.loads((out / "tif_run.json").read_text())["config"]["bf16"] is cpu.fast_bf16
    trained, tokenizer = saved_models[0], load_model(str(out))[1]
    expected = _logits(trained, tokenizer)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.allclose(_logits(base, tokenizer), expected, atol=1e-4)
    # The trained model object still runs its forward under the training's autocast (accelerate
    # wraps `forward` in bf16 autocast for a bf16 run): the reloaded models are run under the
    # same one, so that equal weights give equal logits (in float32 the autocast is none).
    reloaded = PeftModel.from_pretrained(base, out)
    with autocast(torch.device("cpu"), cpu.fast_bf16):
        torch.testing.assert_close(_logits(reloaded, tokenizer), expected, atol=1e-5, rtol=1e-5)
    # Our loader merges base + adapter into W + BA: compared in float32 (merged, bf16 matmuls
    # would round differently than W x + B (A x)).
    merged_on_load, _ = load_model(str(out))
    expected_fp32 = _logits(reloaded, tokenizer)
    torch.testing.assert_close(
        _logits(merged_on_load, tokenizer), expected_fp32, atol=1e-5, rtol=1e-5
    )


def test_adapter_names_a_relative_base_folder_by_its_absolute_path(
    tiny_model_dir, qa_files, tmp_path, monkeypatch
):
    monkeypatch.chdir(tiny_model_dir.parent)
    out = tmp_path / "adapter"
    assert _unlearn(tiny_model_dir.name, qa_files["forget"], out, "--lora-r", "4") == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_model_dir.resolve())
    monkeypatch.chdir(tmp_path)  # elsewhere, where the relative name means nothing
    model, _ = load_model(str(out))
    assert not any("lora_" in name for name, _ in model.named_parameters())


def test_merge_lora_saves_a_plain_model(tiny_model_dir, qa_files, tmp_path, cpu):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter_out, merged_out = tmp_path / "adapter", tmp_path / "merged"
    assert _unlearn(tiny_model_dir, qa_files["forget"], adapter_out, "--lora-r", "4") == 0
    args = ("--lora-r", "4", "--merge-lora")
    assert _unlearn(tiny_model_dir, qa_files["forget"], merged_out, *args) == 0
    assert json.loads((merged_out / "tif_run.json").read_text())["config"]["bf16"] is (
        cpu.fast_bf16
    )
    assert not (merged_out / "adapter_config.json").exists()
    tokenizer = load_model(str(adapter_out))[1]
    # Run 1's adapter on the base model, in float32 (the same training as run 2: fixed seed).
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    expected = _logits(PeftModel.from_pretrained(base, adapter_out), tokenizer)
    plain = AutoModelForCausalLM.from_pretrained(merged_out)
    assert plain.dtype == torch.float32
    assert not any("lora" in k for k in plain.state_dict())
    torch.testing.assert_close(_logits(plain, tokenizer), expected, atol=1e-5, rtol=1e-5)


def test_live_reference_with_lora_matches_cached(tiny_model_dir, qa_files, tmp_path):
    cached, live = tmp_path / "cached", tmp_path / "live"
    # float64: two training runs compared across CPUs (tolerances derived in conftest.py)
    args = ("--lora-r", "4", "--dtype", "float64")
    assert _unlearn(tiny_model_dir, qa_files["forget"], cached, *args) == 0
    assert _unlearn(tiny_model_dir, qa_files["forget"], live, *args, "--live-reference") == 0
    torch.testing.assert_close(_losses(live), _losses(cached), atol=0.0, rtol=LOGGED_LOSS_RTOL)
    weights_live = load_file(str(live / "adapter_model.safetensors"))
    weights_cached = load_file(str(cached / "adapter_model.safetensors"))
    for name, weight in weights_cached.items():
        assert weight.dtype == torch.float64
        torch.testing.assert_close(weights_live[name], weight, atol=FLOAT64_WEIGHT_ATOL, rtol=0.0)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_gradient_checkpointing_gives_the_same_training(
    tiny_model_dir, qa_files, tmp_path, saved_models, lora
):
    extra = ("--lora-r", "4", "--merge-lora") if lora else ()
    extra = (*extra, "--dtype", "float64")  # two runs compared: tolerances from conftest.py
    plain, checkpointed = tmp_path / "plain", tmp_path / "checkpointed"
    assert _unlearn(tiny_model_dir, qa_files["forget"], plain, *extra) == 0
    args = (*extra, "--gradient-checkpointing")
    assert _unlearn(tiny_model_dir, qa_files["forget"], checkpointed, *args) == 0
    assert (
        saved_models[1].is_activation_checkpointing
        and not saved_models[0].is_activation_checkpointing
    )
    torch.testing.assert_close(
        _losses(checkpointed), _losses(plain), atol=0.0, rtol=LOGGED_LOSS_RTOL
    )
    before = load_file(str(tiny_model_dir / "model.safetensors"))
    weights = load_file(str(plain / "model.safetensors"))
    assert any(not torch.equal(weights[k], before[k]) for k in before)  # it did train
    for name, weight in load_file(str(checkpointed / "model.safetensors")).items():
        assert weight.dtype == torch.float64
        torch.testing.assert_close(weight, weights[name], atol=FLOAT64_WEIGHT_ATOL, rtol=0.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--merge-lora",), "--merge-lora needs --lora-r > 0"),
        (("--lora-r", "4", "--lora-targets", "no_such_proj"), "--lora-targets no_such_proj"),
        (("--lora-r", "-1"), "lora_r must be >= 0"),
    ],
)
def test_bad_lora_options_are_one_line_errors(
    tiny_model_dir, qa_files, tmp_path, capsys, extra, message
):
    out = tmp_path / "out"
    assert _unlearn(tiny_model_dir, qa_files["forget"], out, *extra) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "tif: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("tif: error:") and message in errors[0]
    assert not out.exists()


def test_keep_best_restores_the_adapter_weights(tiny_model, tmp_path):
    from tif_unlearn.config.schema import LORA_TARGETS
    from tif_unlearn.train.evaluation import EvalCallback
    from tif_unlearn.train.lora import add_lora

    model = add_lora(tiny_model, r=4, alpha=8.0, targets=LORA_TARGETS)
    adapters = {name: p for name, p in model.named_parameters() if "lora_" in name}
    with torch.no_grad():
        for param in adapters.values():
            param.normal_()
    model.save_pretrained(tmp_path / "best")  # what EvalCallback._maybe_keep writes
    best = {name: p.detach().clone() for name, p in adapters.items()}
    with torch.no_grad():
        for param in adapters.values():
            param.zero_()  # training moved on after the best step
    callback = EvalCallback.__new__(EvalCallback)  # no eval data needed to restore
    callback.best_folder, callback.best = tmp_path / "best", {"step": 1, "metric": "m", "value": 0}
    callback.restore_best(model)
    for name, param in adapters.items():
        assert torch.equal(param, best[name]), name
