"""Refusals for what the hardware would do wrongly or slowly, as pure functions, and the stop
tokens of generation."""

from __future__ import annotations

import json

import pytest
import torch

from tif_unlearn.cli import main
from tif_unlearn.config.schema import UnlearnConfig
from tif_unlearn.errors import TifError
from tif_unlearn.evaluate.generation import chat_prompt, generate, stop_token_ids
from tif_unlearn.train.distributed import (
    check_zero3_options,
    zero_stage_from_env,
)
from tif_unlearn.train.precision import (
    check_half_precision_weights,
    eval_dtype,
    fast_bf16,
    training_precision,
)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_weights_are_refused_for_full_fine_tuning(dtype):
    with pytest.raises(TifError, match="--bf16"):
        check_half_precision_weights(dtype, lora_r=0)


@pytest.mark.parametrize("dtype, lora_r", [("float32", 0), ("bfloat16", 8), ("float16", 16)])
def test_float32_weights_or_lora_adapters_train(dtype, lora_r):
    check_half_precision_weights(dtype, lora_r)


def test_stop_tokens_join_the_tokenizers_eos_and_the_models_own_list(tiny_model, tokenizer):
    tiny_model.generation_config.eos_token_id = [tokenizer.eos_token_id, 7, 9]
    assert stop_token_ids(tiny_model, tokenizer) == [tokenizer.eos_token_id, 7, 9]
    tiny_model.generation_config.eos_token_id = None
    assert stop_token_ids(tiny_model, tokenizer) == [tokenizer.eos_token_id]


def test_generation_stops_at_a_stop_token_of_the_models_own_list(tiny_model, tokenizer):
    # Llama-3 ends a turn with <|eot_id|>, listed in generation_config, not as EOS.
    question = "Where was Basil born?"
    ids = tokenizer(chat_prompt(tokenizer, question), return_tensors="pt")["input_ids"]
    with torch.no_grad():
        first = int(tiny_model(input_ids=ids).logits[0, -1].argmax())  # the greedy first token
    tiny_model.generation_config.eos_token_id = None
    free = generate(tiny_model, tokenizer, [question], max_new_tokens=12)[0]
    tiny_model.generation_config.eos_token_id = [first]
    stopped = generate(tiny_model, tokenizer, [question], max_new_tokens=12)[0]
    assert stopped == tokenizer.decode([first], skip_special_tokens=True).strip()
    assert len(free) > len(stopped)


@pytest.mark.parametrize("fast", [True, False])
def test_auto_precision_picks_bf16_autocast_only_where_bf16_is_fast(fast, monkeypatch):
    monkeypatch.setattr("tif_unlearn.train.precision.cpu_has_fast_bf16", lambda: fast)
    cpu = torch.device("cpu")
    dtype, bf16, reason = training_precision("auto", False, cpu)
    assert (dtype, bf16) == ("float32", fast)  # master weights stay float32 either way
    assert reason.startswith("auto: ")
    assert eval_dtype("auto", cpu) == ("bfloat16" if fast else "float32")


def test_an_explicit_dtype_is_kept_as_asked(monkeypatch):
    monkeypatch.setattr("tif_unlearn.train.precision.cpu_has_fast_bf16", lambda: True)
    cpu = torch.device("cpu")
    assert training_precision("float32", False, cpu)[:2] == ("float32", False)
    assert training_precision("bfloat16", False, cpu)[:2] == ("bfloat16", False)
    assert eval_dtype("float32", cpu) == "float32"


def test_fast_bf16_on_a_cpu_follows_its_flags(monkeypatch):
    for flags, fast in (
        ({"avx2", "avx512f"}, False),
        ({"avx512_bf16"}, True),
        ({"amx_bf16"}, True),
    ):
        monkeypatch.setattr("tif_unlearn.train.precision.cpu_flags", lambda flags=flags: flags)
        assert fast_bf16(torch.device("cpu")) is fast


@pytest.mark.parametrize(
    "env, stage",
    [
        ({}, 0),
        ({"ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, 0),  # DeepSpeed is not switched on
        ({"ACCELERATE_USE_DEEPSPEED": "false", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, 0),
        ({"ACCELERATE_USE_DEEPSPEED": "true"}, 2),  # accelerate's default stage
        ({"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}, 3),
        ({"ACCELERATE_USE_DEEPSPEED": "TRUE", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "1"}, 1),
    ],
)
def test_zero_stage_comes_from_what_accelerate_launch_sets(env, stage):
    assert zero_stage_from_env(env) == stage


@pytest.mark.parametrize("content, stage", [({"stage": 3}, 3), ({"stage": 1}, 1), ({}, 2)])
def test_a_deepspeed_config_files_zero_stage_wins(content, stage, tmp_path):
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"zero_optimization": content, "train_batch_size": "auto"}))
    env = {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(config)}
    assert zero_stage_from_env(env) == stage
    assert zero_stage_from_env({**env, "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}) == (
        content.get("stage", 2)
    )


@pytest.mark.parametrize(
    "options, flag",
    [
        ({"lora_r": 8, "merge_lora": True}, "--merge-lora"),
        ({"eval_every": 5}, "--eval-every"),
        ({"eval_every": 5, "keep_best": "forget_rouge"}, "--keep-best"),
    ],
)
def test_options_that_fail_after_training_under_zero3_are_refused_before_it(options, flag):
    config = UnlearnConfig(model="m", forget="f.jsonl", out="o", **options)
    check_zero3_options(config, stage=2)  # fine under ZeRO-2 (weights are not sharded)
    with pytest.raises(TifError) as refused:
        check_zero3_options(config, stage=3)
    message = str(refused.value)
    assert message.startswith(f"{flag} cannot be used under DeepSpeed ZeRO-3: ")
    assert "\n" not in message


def test_tif_unlearn_refuses_merge_lora_under_zero3_before_loading_a_model(
    tiny_model_dir, qa_files, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    monkeypatch.setattr("tif_unlearn.train.orchestrate.load_model", None)  # never reached
    out = tmp_path / "out"
    argv = ["unlearn", "--model", str(tiny_model_dir), "--forget", str(qa_files["forget"]),
            "--out", str(out), "--lora-r", "4", "--merge-lora"]  # fmt: skip
    assert main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "tif: error:" in line]
    assert len(errors) == 1 and "--merge-lora cannot be used under DeepSpeed ZeRO-3" in errors[0]
    assert not out.exists()
