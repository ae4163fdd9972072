"""Integration: every method trains on a tiny random model; TIF targets UW tokens only."""

from __future__ import annotations

import copy
import gc
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from conftest import LOGGED_LOSS_RTOL, QA_PAIRS, UNWANTED, annotate
from tif_unlearn import losses, tokens
from tif_unlearn.config import UnlearnConfig
from tif_unlearn.data.batches import pad_stream
from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import QARecord
from tif_unlearn.methods import METHODS
from tif_unlearn.train import run_unlearn


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def _config(tiny_model_dir, qa_files, tmp_path, method, **extra):
    options = dict(
        model=str(tiny_model_dir),
        method=method,
        forget=str(qa_files["forget"]),
        retain=str(qa_files["retain"]),
        out=str(tmp_path / f"out-{method}"),
        max_steps=2,
        batch_size=2,
        lr=1e-3,
        warmup_epochs=0,
    )
    options.update(extra)
    return UnlearnConfig(**options)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_two_steps_and_changes_parameters(
    method, tiny_model_dir, qa_files, tmp_path
):
    out = run_unlearn(_config(tiny_model_dir, qa_files, tmp_path, method))
    before, after = _weights(tiny_model_dir), _weights(out)
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, f"{method} left every parameter unchanged"
    run = json.loads((out / "tif_run.json").read_text())
    steps = [entry for entry in run["log"] if "loss" in entry]
    assert len(steps) == 2
    assert all(torch.isfinite(torch.tensor(entry["loss"])) for entry in steps)


def _first_loss(out) -> float:
    run = json.loads((out / "tif_run.json").read_text())
    return next(entry["loss"] for entry in run["log"] if "loss" in entry)


@pytest.mark.parametrize("method", ["tif", "npo", "idkdpo"])
def test_cached_and_live_reference_give_the_same_first_step_loss(
    method, tiny_model_dir, qa_files, tmp_path
):
    # A model that already moved away from the reference would make the LPL/NPO terms differ;
    # at step 1 both reference values come from the same starting weights.
    # float64: the two reference passes batch the rows differently (other kernel shapes).
    options = dict(max_steps=1, dtype="float64")
    cached = run_unlearn(_config(tiny_model_dir, qa_files, tmp_path / "c", method, **options))
    live = run_unlearn(
        _config(tiny_model_dir, qa_files, tmp_path / "l", method, live_reference=True, **options)
    )
    assert _first_loss(cached) == pytest.approx(_first_loss(live), rel=LOGGED_LOSS_RTOL, abs=0)


class CountModels(TrainerCallback):
    """Count live LlamaForCausalLM objects at each training step."""

    def __init__(self):
        self.counts: list[int] = []

    def on_step_end(self, args, state, control, **kwargs):
        gc.collect()
        self.counts.append(
            sum(1 for obj in gc.get_objects() if type(obj).__name__ == "LlamaForCausalLM")
        )


@pytest.mark.parametrize("live", [False, True])
def test_cached_reference_holds_one_model_copy(
    live, tiny_model_dir, qa_files, tmp_path, monkeypatch
):
    from tif_unlearn.train import trainer as trainer_module

    counter = CountModels()
    original_init = trainer_module.UnlearnTrainer.__init__

    def init_with_counter(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(counter)

    monkeypatch.setattr(trainer_module.UnlearnTrainer, "__init__", init_with_counter)
    gc.collect()
    baseline = sum(1 for o in gc.get_objects() if type(o).__name__ == "LlamaForCausalLM")
    run_unlearn(_config(tiny_model_dir, qa_files, tmp_path, "tif", live_reference=live))
    assert counter.counts and max(counter.counts) - baseline == (2 if live else 1)


# --------------------------------------------------------------------------- TIF vs GA


def _memorized_model(tokenizer, examples, steps=150):
    from conftest import build_model

    torch.manual_seed(0)
    model = build_model(len(tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = pad_stream(examples, tokenizer.pad_token_id)
    for _ in range(steps):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits, labels = tokens.shift_for_next_token(out.logits, batch["labels"])
        loss = losses.nll_loss(tokens.token_logprobs(logits, labels), labels != -100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def _uw_logit_and_gw_nll(model, batch):
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits, labels = tokens.shift_for_next_token(out.logits, batch["labels"])
        uw, gw = batch["uw_mask"][:, 1:], batch["gw_mask"][:, 1:]
        z = tokens.token_logits(logits, labels)
        nll = losses.per_token_nll(logits, labels)
    return float(z[uw].mean()), float(nll[gw].mean()), float(nll[uw].mean())


def _unlearn_steps(model, batch, method_name, steps, lr):
    from tif_unlearn.methods.base import reference_values

    method = METHODS[method_name]
    config = method.config_cls()
    forget = dict(batch)
    for stream, kind in method.reference(config).items():
        assert stream == "forget"
        model.eval()
        forget.update(reference_values(model, batch, kind))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss, _ = method.compute_loss(model, {"forget": forget}, config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_tif_lowers_uw_logits_while_keeping_gw_far_better_than_ga(tokenizer):
    records = [
        QARecord(
            r["question"], r["answer"], tuple(tuple(s) for s in annotate(r, w)["unwanted_spans"])
        )
        for r, w in zip(QA_PAIRS, UNWANTED, strict=True)
    ]
    examples = [encode_record(tokenizer, r).as_dict() for r in records]
    batch = pad_stream(examples, tokenizer.pad_token_id)
    target = _memorized_model(tokenizer, examples)
    uw_logit0, gw_nll0, uw_nll0 = _uw_logit_and_gw_nll(target, batch)
    assert gw_nll0 < 0.1 and uw_nll0 < 0.1, "the tiny model did not memorize the QA pairs"

    results = {}
    for name in ("tif", "ga"):
        model = copy.deepcopy(target)
        _unlearn_steps(model, batch, name, steps=10, lr=1e-3)
        results[name] = _uw_logit_and_gw_nll(model, batch)
    tif_uw_logit, tif_gw_nll, tif_uw_nll = results["tif"]
    _, ga_gw_nll, ga_uw_nll = results["ga"]
    assert tif_uw_logit < uw_logit0 - 0.5, "TIF did not push the UW logits down"
    assert tif_uw_nll > uw_nll0 + 1.0, "TIF did not make UW tokens less likely"
    gw_rise_tif, gw_rise_ga = tif_gw_nll - gw_nll0, ga_gw_nll - gw_nll0
    assert gw_rise_ga > 0.5
    assert gw_rise_tif < 0.2 * gw_rise_ga, (gw_rise_tif, gw_rise_ga)
