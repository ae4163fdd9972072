"""Around a run: the model card written beside every trained model (the hub reads it and its
metadata round-trips) and experiment tracking (--report-to)."""

from __future__ import annotations

import json
import math

import pytest
from huggingface_hub import ModelCard

from tif_unlearn.config import FinetuneConfig, UnlearnConfig
from tif_unlearn.errors import TifError
from tif_unlearn.report.model_card import hub_datasets, hub_model_id, model_card
from tif_unlearn.train import run_finetune, run_unlearn


def _unlearn(tiny_model_dir, qa_files, tmp_path, **extra):
    config = UnlearnConfig(
        model=str(tiny_model_dir),
        forget=str(qa_files["forget"]),
        retain=str(qa_files["retain"]),
        out=str(tmp_path / "unlearned"),
        max_steps=1,
        batch_size=2,
        beta=0.5,
        **extra,
    )
    return run_unlearn(config)


def test_unlearn_writes_a_card_the_hub_reads(tiny_model_dir, qa_files, tmp_path):
    out = _unlearn(tiny_model_dir, qa_files, tmp_path)
    card = ModelCard.load(out / "README.md")
    metadata = card.data.to_dict()
    assert metadata["library_name"] == "transformers"
    assert {"unlearning", "tif", "targeted-unlearning"} <= set(metadata["tags"])
    assert "base_model" not in metadata  # a local folder has no hub id
    run = json.loads((out / "tif_run.json").read_text())
    assert run["data"]["forget"]["sha256"] in card.text  # the digest of the data it forgot
    assert "--method tif" in card.text and "--beta 0.5" in card.text
    assert "does not guarantee" in card.text
    from tif_unlearn.train.precision import cpu_has_fast_bf16

    # --dtype auto (the default): bf16 autocast only where this CPU runs bf16 fast
    assert run["config"]["dtype"] == "float32" and run["config"]["bf16"] is cpu_has_fast_bf16()
    assert run["precision"].startswith("auto: ")
    reloaded = ModelCard(card.content)  # the metadata survives a write / read round trip
    assert reloaded.data.to_dict() == metadata


def test_finetune_card_names_the_data(tiny_model_dir, qa_files, tmp_path):
    config = FinetuneConfig(
        model=str(tiny_model_dir),
        data=str(qa_files["plain"]),
        out=str(tmp_path / "ft"),
        max_steps=1,
    )
    card = ModelCard.load(run_finetune(config) / "README.md")
    assert "fine-tuned" in card.data.to_dict()["tags"]
    assert str(qa_files["plain"]) in card.text


def test_card_metadata_for_hub_models_data_and_evaluation_results():
    record = {
        "command": "unlearn",
        "method": "npo",
        "method_config": {"beta": 0.1},
        "config": {
            "model": "smollm2-135m",
            "out": "runs/npo",
            "epochs": 10.0,
            "lr": 1e-5,
            "batch_size": 4,
            "grad_accum": 8,
            "seed": 0,
            "eval_forget_split": "forget01",
        },
        "data": {"forget": {"source": "tofu:forget01", "sha256": "ab"}},
        "eval": [{"step": 4, "forget_quality": 0.5}, {"step": 8, "forget_quality": 0.9}],
    }
    card = ModelCard(model_card(record))
    metadata = card.data.to_dict()
    assert metadata["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert metadata["datasets"] == ["locuslab/TOFU"]
    result = card.data.eval_results[0]
    assert (result.metric_type, result.metric_value) == ("forget_quality", 0.9)  # the last one


def test_hub_ids_are_told_apart_from_local_paths(tmp_path):
    assert hub_model_id("meta-llama/Llama-3.2-1B-Instruct") == "meta-llama/Llama-3.2-1B-Instruct"
    (tmp_path / "runs").mkdir()
    assert hub_model_id(str(tmp_path / "runs")) is None
    assert hub_datasets(["hf://locuslab/TOFU/forget01@train", None, "x.jsonl"]) == ["locuslab/TOFU"]


def test_report_to_tensorboard_writes_our_loss_parts(tiny_model_dir, qa_files, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _unlearn(tiny_model_dir, qa_files, tmp_path, report_to="tensorboard")
    events = EventAccumulator(str(tmp_path / "unlearned.tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/lpl", "train/pl", "train/retain_nll"} <= tags
    assert events.Scalars("train/lpl")[0].value == pytest.approx(4 * math.log(2), abs=1e-4)


def test_report_to_a_tracker_that_is_not_installed_is_refused_before_loading(
    tiny_model_dir, qa_files, tmp_path
):
    import importlib.util

    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("mlflow is installed here")
    with pytest.raises(TifError, match="needs the mlflow package"):
        _unlearn(tiny_model_dir, qa_files, tmp_path, report_to="mlflow")
    assert not (tmp_path / "unlearned").exists()


def test_push_to_hub_without_a_token_fails_in_one_line_before_training(
    tiny_model_dir, qa_files, tmp_path, monkeypatch
):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(TifError, match="no Hugging Face token.*before training") as info:
        _unlearn(tiny_model_dir, qa_files, tmp_path, push_to_hub="me/unlearned")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "unlearned").exists()  # issue 34: refused before any training


def test_push_to_hub_when_the_hub_is_unreachable_keeps_the_model(
    tiny_model_dir, qa_files, tmp_path, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(TifError, match="--push-to-hub me/unlearned failed") as info:
        _unlearn(tiny_model_dir, qa_files, tmp_path, push_to_hub="me/unlearned")
    assert "the model is saved in" in str(info.value) and "\n" not in str(info.value)
    assert (tmp_path / "unlearned" / "model.safetensors").is_file()
