"""The training recipe the paper's code follows: batches reshuffled every epoch and, with
``step_count="floor"`` (the presets), only full accumulation windows taking optimizer steps."""

from __future__ import annotations

import json
import math

import pytest
from transformers import TrainerCallback, TrainingArguments

from conftest import QA_PAIRS, UNWANTED, annotate, write_jsonl
from tif_unlearn.config import UnlearnConfig
from tif_unlearn.train import run_unlearn
from tif_unlearn.train.trainer import SupervisedDataset, UnlearnTrainer


class MicroBatchCounter(TrainerCallback):
    """Micro-batches that went into each optimizer step."""

    def __init__(self):
        self.per_step, self._pending = [], 0

    def on_substep_end(self, args, state, control, **kwargs):
        self._pending += 1

    def on_step_end(self, args, state, control, **kwargs):
        self.per_step.append(self._pending + 1)
        self._pending = 0


def _forget_file(tmp_path, n: int):
    rows = [annotate(QA_PAIRS[i % 4], UNWANTED[i % 4]) for i in range(n)]
    rows = [{**r, "question": f"{r['question']} ({i})"} for i, r in enumerate(rows)]
    return write_jsonl(tmp_path / "forget10.jsonl", rows)


@pytest.mark.parametrize("step_count, expected", [("floor", [2] * 7), ("ceil", [2, 2, 1] * 3)])
def test_floor_step_count_takes_only_full_accumulation_windows(
    step_count, expected, tiny_model_dir, tmp_path
):
    # 10 examples, micro-batch 2, 2 accumulation steps, 3 epochs: floor(30 / 4) = 7 full steps;
    # "ceil" ends every epoch with a step on the fifth micro-batch alone.
    counter = MicroBatchCounter()
    config = UnlearnConfig(
        model=str(tiny_model_dir),
        forget=str(_forget_file(tmp_path, 10)),
        out=str(tmp_path / f"out-{step_count}"),
        epochs=3,
        batch_size=2,
        grad_accum=2,
        warmup_epochs=0,
        step_count=step_count,
    )
    out = run_unlearn(config, callbacks=[counter])
    assert counter.per_step == expected
    run = json.loads((out / "tif_run.json").read_text())
    assert len([e for e in run["log"] if "loss" in e]) == len(expected)


def test_trainer_reshuffles_micro_batches_every_epoch(tiny_model, tmp_path):
    # The TOFU preset's shape: 40 forget examples, micro-batch 4, 8 accumulation steps. The
    # trainer's sampler used to sort blocks of 8 x 32 examples, fixing 8 of the 10 batches.
    examples = [{"input_ids": [1] * (5 + i), "labels": [1] * (5 + i)} for i in range(40)]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=8,
        use_cpu=True,
        report_to="none",
    )
    trainer = UnlearnTrainer(
        model=tiny_model,
        args=args,
        train_dataset=SupervisedDataset(examples),
        method=None,
        method_config=None,
    )
    sampler = trainer._get_train_sampler()
    batches = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        order = list(sampler)
        batches.append({frozenset(order[i : i + 4]) for i in range(0, 40, 4)})
    assert len(batches[0] & batches[1]) <= 1 and len(batches[1] & batches[2]) <= 1


@pytest.mark.parametrize("method", ["ga", "npo", "simnpo"])
def test_targeted_methods_train_on_annotated_records_and_refuse_plain_ones(
    method, tiny_model_dir, qa_files, tmp_path
):
    from tif_unlearn.errors import TifError

    options = dict(
        model=str(tiny_model_dir),
        method=method,
        targeted=True,
        out=str(tmp_path / method),
        max_steps=1,
        batch_size=2,
        warmup_epochs=0,
    )
    out = run_unlearn(UnlearnConfig(forget=str(qa_files["forget"]), **options))
    run = json.loads((out / "tif_run.json").read_text())
    assert run["method_config"]["targeted"] is True
    assert "pl" in next(e for e in run["log"] if "loss" in e)
    with pytest.raises(TifError, match="no unwanted-word annotation"):
        run_unlearn(UnlearnConfig(forget=str(qa_files["plain"]), **{**options, "overwrite": True}))


@pytest.mark.parametrize(
    "method, options",
    [
        ("tif", {"lpl_space": "logprob"}),
        ("tif", {"lpl_space": "logprob", "live_reference": True}),
        ("npo", {}),
        ("npo", {"live_reference": True}),
    ],
)
def test_bf16_reference_is_computed_under_the_policys_autocast(
    method, options, tiny_model_dir, qa_files, tmp_path, monkeypatch
):
    # Δ (TIF) and the NPO log-ratio are 0 at the first step only if the reference values come
    # from the same bf16 autocast as the policy; then both losses equal (2/β)·ln 2. (Log-probs,
    # not the tiny model's near-zero raw logits, so that a bf16 mismatch shows.)
    monkeypatch.setattr("tif_unlearn.train.precision.cpu_has_fast_bf16", lambda: True)
    config = UnlearnConfig(
        model=str(tiny_model_dir),
        method=method,
        forget=str(qa_files["forget"]),
        out=str(tmp_path / "bf16"),
        max_steps=1,
        batch_size=4,
        beta=0.5,
        bf16=True,
        **options,
    )
    run = json.loads((run_unlearn(config) / "tif_run.json").read_text())
    first = next(e for e in run["log"] if "loss" in e)
    assert first["lpl" if method == "tif" else "npo"] == pytest.approx(4 * math.log(2), abs=1e-5)


def test_bf16_is_refused_with_one_line_where_the_cpu_has_no_fast_bf16(
    tiny_model_dir, qa_files, tmp_path, monkeypatch
):
    from tif_unlearn.errors import TifError

    monkeypatch.setattr("tif_unlearn.train.precision.cpu_has_fast_bf16", lambda: False)
    config = UnlearnConfig(
        model=str(tiny_model_dir),
        forget=str(qa_files["forget"]),
        out=str(tmp_path / "o"),
        bf16=True,
    )
    with pytest.raises(TifError, match="no fast bfloat16"):
        run_unlearn(config)
    assert not (tmp_path / "o").exists()
