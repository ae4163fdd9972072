"""train/schedule.py, precision.py, checkpoints.py and trainer.py, by hand-computed cases: the
step plan and TrainingArguments of a run, the bf16 decisions per device, the checkpoint folder's
bookkeeping and NaN guard, and the trainer's loss parts (issue 35, mutation testing)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainingArguments

from tif_unlearn.config import UnlearnConfig
from tif_unlearn.errors import TifError
from tif_unlearn.methods.base import TOKEN_LOGITS, Method, reference_values
from tif_unlearn.train import checkpoints as ck
from tif_unlearn.train import precision
from tif_unlearn.train.schedule import step_plan, training_arguments
from tif_unlearn.train.trainer import (
    LengthGroupedTrainer,
    SupervisedDataset,
    UnlearnTrainer,
    one_gpu_per_process,
)

CPU = torch.device("cpu")
META = torch.device("meta")


def _config(**overrides) -> UnlearnConfig:
    return UnlearnConfig(**{"out": "out-model", "forget": "forget.jsonl", **overrides})


# --- schedule.py: the step plan ---------------------------------------------------------


def test_a_step_plan_cannot_be_changed():
    plan = step_plan(_config(), 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps = 3


def test_floor_plan_counts_every_process_of_the_effective_batch(monkeypatch):
    # 2 per device x 3 accumulated x 2 processes = 12 examples a step; 30 examples: 2.5 steps
    # an epoch, floor(2 epochs x 2.5) = 5 steps; warm-up round(2.5 x 0.5) = 1; 5 x 12 drawn.
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = _config(batch_size=2, grad_accum=3, epochs=2, warmup_epochs=0.5, step_count="floor")
    plan = step_plan(config, 30)
    assert (plan.steps, plan.warmup, plan.samples) == (5, 1, 60)


def test_ceil_plan_ends_each_epoch_with_a_step():
    # 4 a step; 10 examples: ceil(2.5) = 3 steps an epoch, ceil(3 x 1.5 epochs) = 5 steps;
    # warm-up round(3 x 0.5) = 2; no sample count (one pass per epoch).
    config = _config(batch_size=4, grad_accum=1, epochs=1.5, warmup_epochs=0.5)
    plan = step_plan(config, 10)
    assert (plan.steps, plan.warmup, plan.samples) == (5, 2, None)


def test_floor_plan_takes_at_least_one_step():
    # 1 example, 4 a step: floor(0.25) = 0 steps would train nothing
    config = _config(batch_size=4, grad_accum=1, epochs=1, step_count="floor")
    plan = step_plan(config, 1)
    assert (plan.steps, plan.samples) == (1, 4)


def test_floor_plan_absorbs_float_error_below_1e_9():
    # one step an epoch; 2.99999999994 epochs is 3 up to 1e-9 (the rounding that absorbs
    # float error such as 3 x (10 / 3) = 10.000000000000002): 3 steps, not floor(2.99...) = 2
    config = _config(batch_size=2, grad_accum=1, epochs=2.99999999994, step_count="floor")
    assert step_plan(config, 2).steps == 3


def test_max_steps_of_one_caps_the_plan_and_leaves_no_warm_up():
    config = _config(batch_size=1, grad_accum=1, epochs=1, max_steps=1, warmup_epochs=1.0)
    plan = step_plan(config, 10)
    assert (plan.steps, plan.warmup) == (1, 0)


def test_warm_up_leaves_the_last_step_at_full_rate():
    # 3 steps, a warm-up of 3 steps asked: 2 (at most total - 1)
    config = _config(batch_size=1, grad_accum=1, epochs=1, warmup_epochs=1.0)
    plan = step_plan(config, 3)
    assert (plan.steps, plan.warmup) == (3, 2)


# --- schedule.py: TrainingArguments --------------------------------------------------------


def _arguments(tmp_path, n_examples=8, **overrides) -> TrainingArguments:
    config = _config(**overrides)
    return training_arguments(config, step_plan(config, n_examples), str(tmp_path / "scratch"))


@pytest.mark.parametrize(
    ("scheduler", "warmup_epochs", "expected"),
    [
        ("constant", 1.0, "constant_with_warmup"),
        ("constant", 0.0, "constant"),
        ("linear", 1.0, "linear"),
    ],
)
def test_constant_rate_with_warm_up_is_constant_with_warmup(
    tmp_path, scheduler, warmup_epochs, expected
):
    args = _arguments(
        tmp_path, batch_size=2, epochs=3, scheduler=scheduler, warmup_epochs=warmup_epochs
    )
    assert args.lr_scheduler_type == expected


def test_training_arguments_log_every_step_keep_all_columns_and_load_in_process(tmp_path):
    args = _arguments(tmp_path, batch_size=2)
    assert args.logging_steps == 1  # FiniteGuard checks every step's loss
    assert args.remove_unused_columns is False  # the streams are not model arguments
    assert args.dataloader_num_workers == 0
    assert args.save_strategy == "no" and args.logging_nan_inf_filter is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU-only choice")
@pytest.mark.parametrize("bf16", [False, True])
def test_a_lone_cpu_process_uses_the_cpu_only_for_bf16(tmp_path, bf16):
    args = _arguments(tmp_path, batch_size=2, bf16=bf16)
    assert args.use_cpu is bf16


def test_floor_plan_sets_max_steps_and_ceil_leaves_it(tmp_path):
    floor = _arguments(tmp_path, n_examples=8, batch_size=2, epochs=2, step_count="floor")
    assert floor.max_steps == 8
    assert _arguments(tmp_path, n_examples=8, batch_size=2, epochs=2).max_steps == -1


# --- checkpoints.py ---------------------------------------------------------------------


def test_save_options_follow_save_steps():
    assert ck.save_options(_config()) == {
        "save_strategy": "no",
        "save_steps": 500,  # unused without saving, but TrainingArguments wants a number
        "save_total_limit": 2,  # the newest may be cut short: keep the complete one before it
        "logging_nan_inf_filter": False,
    }
    options = ck.save_options(_config(save_steps=7))
    assert (options["save_strategy"], options["save_steps"]) == ("steps", 7)


def test_checkpoints_sit_beside_the_output_folder(tmp_path):
    assert ck.checkpoint_dir(tmp_path / "run") == tmp_path / "run.checkpoints"


def test_fingerprint_leaves_out_what_does_not_change_training():
    values = ck.fingerprint(_config(lr=3e-5, save_steps=9), {"forget.jsonl": "ab12"})
    assert values["lr"] == 3e-5 and values["sha256"] == {"forget.jsonl": "ab12"}
    assert not {"out", "save_steps", "resume", "overwrite"} & set(values)


def _make(folder, *names, marked=()):
    for name in names:
        (folder / name).mkdir(parents=True)
        if name in marked:
            ck.write_marker(folder / name, {"step": name, "fingerprint": {"lr": 1}})


def test_checkpoints_are_the_numbered_folders_by_step(tmp_path):
    assert ck.checkpoints(tmp_path / "missing") == []
    _make(tmp_path, "checkpoint-10", "checkpoint-9", "checkpoint-0", "other", "checkpoint-x")
    (tmp_path / "checkpoint-11").write_text("a file, not a folder")
    found = [p.name for p in ck.checkpoints(tmp_path)]
    assert found == ["checkpoint-0", "checkpoint-9", "checkpoint-10"]


def test_last_complete_checkpoint_skips_unmarked_ones(tmp_path):
    assert ck.last_complete_checkpoint(tmp_path) is None
    _make(tmp_path, "checkpoint-1", "checkpoint-2", "checkpoint-3", "checkpoint-4",
          marked=("checkpoint-1", "checkpoint-2", "checkpoint-3"))  # fmt: skip
    assert ck.last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-3"


def test_a_marker_is_written_whole(tmp_path):
    ck.write_marker(tmp_path, {"step": 3, "fingerprint": {"lr": 1e-5}})
    assert json.loads((tmp_path / ck.MARKER).read_text()) == {
        "step": 3,
        "fingerprint": {"lr": 1e-5},
    }
    assert [p.name for p in tmp_path.iterdir()] == [ck.MARKER]  # no temporary file left


def test_same_run_passes_and_another_run_is_named(tmp_path):
    ck.write_marker(tmp_path, {"step": 1, "fingerprint": {"lr": 1, "seed": 0}})
    ck.check_same_run(tmp_path, {"lr": 1, "seed": 0})
    with pytest.raises(TifError, match=r"seed: 0 -> 1") as caught:
        ck.check_same_run(tmp_path, {"lr": 1, "seed": 1})
    assert "lr" not in str(caught.value).split("(")[1]
    with pytest.raises(TifError, match="cannot read"):
        ck.check_same_run(tmp_path / "nowhere", {"lr": 1})


def _prepare(tmp_path, **overrides):
    return ck.prepare_checkpoints(_config(out=str(tmp_path / "run"), **overrides), {"lr": 1})


def test_a_fresh_run_without_checkpoints_starts_from_nothing(tmp_path):
    assert _prepare(tmp_path) is None
    assert not ck.checkpoint_dir(tmp_path / "run").exists()


def test_a_fresh_run_refuses_leftover_checkpoints_unless_overwriting(tmp_path):
    folder = ck.checkpoint_dir(tmp_path / "run")
    _make(folder, "checkpoint-2", marked=("checkpoint-2",))
    with pytest.raises(TifError, match="unfinished run"):
        _prepare(tmp_path)
    assert _prepare(tmp_path, overwrite=True) is None
    assert not folder.exists()


def test_resume_takes_the_last_complete_checkpoint_and_drops_cut_short_ones(tmp_path):
    folder = ck.checkpoint_dir(tmp_path / "run")
    with pytest.raises(TifError, match="no complete checkpoint"):
        _prepare(tmp_path, resume=True)
    _make(folder, "checkpoint-2", "checkpoint-4", "checkpoint-6", marked=("checkpoint-2", "checkpoint-4"))  # fmt: skip
    assert _prepare(tmp_path, resume=True) == str(folder / "checkpoint-4")
    assert [p.name for p in ck.checkpoints(folder)] == ["checkpoint-2", "checkpoint-4"]


def test_resume_refuses_keep_best(tmp_path):
    with pytest.raises(TifError, match="keep-best"):
        _prepare(tmp_path, resume=True, keep_best="forget_quality", eval_every=2)


def test_removing_checkpoints_that_are_not_there_is_fine(tmp_path):
    ck.remove_checkpoints(tmp_path / "run")
    _make(ck.checkpoint_dir(tmp_path / "run"), "checkpoint-1")
    ck.remove_checkpoints(tmp_path / "run")
    assert not ck.checkpoint_dir(tmp_path / "run").exists()


def _linear(bad: float | None = None) -> torch.nn.Linear:
    layer = torch.nn.Linear(2, 2)
    if bad is not None:
        with torch.no_grad():
            layer.weight[0, 1] = bad  # one bad value among finite ones
    return layer


def test_one_nan_weight_is_found(tmp_path):
    ck.require_finite_weights(_linear(), step=3)
    with pytest.raises(TifError, match="step 3: weight weight holds NaN or inf; .*no checkpoint"):
        ck.require_finite_weights(_linear(math.nan), step=3)
    _make(tmp_path, "checkpoint-2", marked=("checkpoint-2",))
    with pytest.raises(TifError, match="last good checkpoint kept: .*checkpoint-2"):
        ck.require_finite_weights(_linear(math.inf), step=3, folder=tmp_path)


def _state(step=5):
    return SimpleNamespace(global_step=step)


def test_the_guard_names_a_bad_loss_or_gradient_norm():
    guard = ck.FiniteGuard(None)
    control = SimpleNamespace(should_save=False)
    guard.on_log(None, _state(), control, logs=None)
    guard.on_log(None, _state(), control, logs={"loss": 0.5})  # no grad_norm logged
    guard.on_log(None, _state(), control, logs={"loss": 0.5, "grad_norm": 2.0})
    with pytest.raises(TifError, match="step 5: loss is nan"):
        guard.on_log(None, _state(), control, logs={"loss": math.nan})
    with pytest.raises(TifError, match="step 5: gradient norm is inf"):
        guard.on_log(None, _state(), control, logs={"loss": 1.0, "grad_norm": math.inf})


def test_the_guard_checks_the_weights_about_to_be_saved_and_at_the_end():
    guard = ck.FiniteGuard(None)
    logs = {"loss": 1.0}
    guard.on_log(None, _state(), SimpleNamespace(should_save=False), logs=logs, model=_linear(math.nan))  # fmt: skip
    guard.on_log(None, _state(), SimpleNamespace(should_save=True), logs=logs, model=None)
    with pytest.raises(TifError, match="step 5: weight"):
        guard.on_log(None, _state(), SimpleNamespace(should_save=True), logs=logs, model=_linear(math.nan))  # fmt: skip
    guard.on_train_end(None, _state(), None, model=None)
    with pytest.raises(TifError, match="step 5: weight"):
        guard.on_train_end(None, _state(), None, model=_linear(math.nan))


def test_the_checkpoint_callback_marks_the_saved_step(tmp_path, monkeypatch):
    monkeypatch.delenv(ck.TEST_KILL_ENV, raising=False)
    (tmp_path / "checkpoint-4").mkdir()
    callback = ck.CheckpointCallback({"lr": 2})
    callback.on_save(SimpleNamespace(output_dir=str(tmp_path)), _state(4), None)
    saved = json.loads((tmp_path / "checkpoint-4" / ck.MARKER).read_text())
    assert saved == {"step": 4, "fingerprint": {"lr": 2}}


@pytest.mark.parametrize(
    ("save_steps", "resume", "folder", "marker"),
    [(0, False, False, False), (0, True, True, False), (5, False, True, True)],
)
def test_fault_callbacks(tmp_path, save_steps, resume, folder, marker):
    config = _config(out=str(tmp_path / "run"), save_steps=save_steps, resume=resume)
    callbacks = ck.fault_callbacks(config, {"lr": 1})
    assert isinstance(callbacks[0], ck.FiniteGuard)
    assert callbacks[0].folder == (tmp_path / "run.checkpoints" if folder else None)
    assert [type(c) for c in callbacks[1:]] == ([ck.CheckpointCallback] if marker else [])


@pytest.mark.parametrize(
    ("variable", "rank", "kills"),
    [
        ("3", None, {(3, "marked")}),
        ("3:marked", None, {(3, "marked")}),
        ("3:unmarked", None, {(3, "unmarked")}),
        ("3:marked:1", None, set()),  # RANK unset: this is rank 0
        ("3:marked:1", "1", {(3, "marked")}),
        ("3:unmarked:0", "0", {(3, "unmarked")}),
        ("", None, set()),
    ],
)
def test_the_test_kill_hook_fires_only_where_asked(monkeypatch, variable, rank, kills):
    signals = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signals.append((pid, sig)))
    monkeypatch.setenv(ck.TEST_KILL_ENV, variable)
    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    fired = set()
    for step in (2, 3, 4):
        for point in ("marked", "unmarked"):
            before = len(signals)
            ck._test_kill(step, point)
            if len(signals) > before:
                fired.add((step, point))
    assert fired == kills
    assert all(pid == os.getpid() for pid, _ in signals)


# --- precision.py --------------------------------------------------------------------------


def test_the_flags_source_is_named_only_for_a_cpu_and_the_variable(monkeypatch):
    monkeypatch.setenv(precision.CPU_FLAGS_VARIABLE, "avx2")
    assert "per $TIF_CPU_FLAGS" in precision.training_precision("auto", False, CPU)[2]
    assert precision.training_precision("auto", False, META)[2] == (
        "auto: float32 (no fast bf16 on meta)"
    )
    monkeypatch.delenv(precision.CPU_FLAGS_VARIABLE)
    assert "per $" not in precision.training_precision("auto", False, CPU)[2]


@pytest.mark.parametrize("flags", ["avx2", "avx2 amx_bf16"])
def test_no_device_but_a_cpu_or_a_gpu_has_fast_bf16(monkeypatch, flags):
    monkeypatch.setenv(precision.CPU_FLAGS_VARIABLE, flags)
    assert precision.fast_bf16(META) is False
    assert precision.eval_dtype("auto", META) == "float32"
    precision.check_bf16(META)  # neither a GPU nor a CPU: nothing to refuse


def test_an_explicit_eval_dtype_is_kept(monkeypatch):
    monkeypatch.setenv(precision.CPU_FLAGS_VARIABLE, "avx2 amx_bf16")
    assert precision.eval_dtype("float16", CPU) == "float16"
    assert precision.eval_dtype("float32", CPU) == "float32"
    assert precision.eval_dtype("auto", CPU) == "bfloat16"


@pytest.mark.parametrize("flags, refused", [("avx2", True), ("avx2,amx_bf16", False)])
def test_bf16_on_a_cpu_is_refused_only_without_fast_bf16(monkeypatch, flags, refused):
    monkeypatch.setenv(precision.CPU_FLAGS_VARIABLE, flags)
    if refused:
        with pytest.raises(TifError, match="this CPU has no fast bfloat16"):
            precision.check_bf16(CPU)
    else:
        precision.check_bf16(CPU)


@pytest.mark.parametrize("supported", [False, True])
def test_bf16_on_a_gpu_follows_the_gpus_support(monkeypatch, supported):
    # the GPU's answer stands in for a GPU this machine may not have; the CPU says no
    monkeypatch.setenv(precision.CPU_FLAGS_VARIABLE, "avx2")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    gpu = torch.device("cuda")
    assert precision.fast_bf16(gpu) is supported
    if supported:
        precision.check_bf16(gpu)
    else:
        with pytest.raises(TifError, match="this GPU does not support bfloat16"):
            precision.check_bf16(gpu)


@pytest.mark.parametrize("bf16", [False, True])
def test_autocast_runs_matmuls_in_bf16_only_when_asked(bf16):
    a = torch.ones(2, 2)
    with precision.autocast(CPU, bf16):
        product = a @ a
    assert product.dtype == (torch.bfloat16 if bf16 else torch.float32)


@pytest.mark.parametrize("lora_r", [1, 8])
def test_half_precision_base_weights_are_fine_under_any_lora_rank(lora_r):
    precision.check_half_precision_weights("bfloat16", lora_r)
    precision.check_half_precision_weights("float16", lora_r)


def test_eval_threads_of_one_are_set_and_none_leaves_torchs_choice(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv(precision.CPU_FLAGS_VARIABLE, "avx2")
    try:
        assert precision.apply_eval_precision(precision.EvalPrecision(device="cpu")) == (
            "float32",
            "cpu",
        )
        assert torch.get_num_threads() == before
        precision.apply_eval_precision(precision.EvalPrecision(threads=1, device="cpu"))
        assert torch.get_num_threads() == 1
        with pytest.raises(TifError, match="--threads must be >= 1"):
            precision.apply_eval_precision(precision.EvalPrecision(threads=0, device="cpu"))
    finally:
        torch.set_num_threads(before)


# --- trainer.py ----------------------------------------------------------------------------


def _training_args(tmp_path, **overrides) -> TrainingArguments:
    options = {"per_device_train_batch_size": 2, "report_to": "none", "use_cpu": True}
    return TrainingArguments(output_dir=str(tmp_path / "scratch"), **{**options, **overrides})


@pytest.fixture
def four_gpus(monkeypatch):
    """TrainingArguments count 4 visible GPUs (none needed: the Trainer is only built)."""
    monkeypatch.setattr("torch.cuda.device_count", lambda: 4)


@pytest.mark.parametrize("gpus", [2, 4])
def test_one_process_keeps_to_one_of_several_gpus(tmp_path, monkeypatch, gpus):
    monkeypatch.setattr("torch.cuda.device_count", lambda: gpus)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    assert args.n_gpu == gpus
    one_gpu_per_process(args)
    assert args.n_gpu == 1
    one_gpu_per_process(None)  # no arguments yet: nothing to do


def test_several_processes_keep_their_gpu_count(tmp_path, monkeypatch, four_gpus):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    assert args.n_gpu == 4
    monkeypatch.setenv("WORLD_SIZE", "2")
    one_gpu_per_process(args)
    assert args.n_gpu == 4


def test_a_cpu_process_keeps_no_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    one_gpu_per_process(args)
    assert args.n_gpu == 0


def test_positional_arguments_reach_the_one_gpu_check(tmp_path, tiny_model, four_gpus):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    LengthGroupedTrainer(tiny_model, args)
    assert args.n_gpu == 1
    other = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    LengthGroupedTrainer(tiny_model, args=other)  # model positional, arguments by name
    assert other.n_gpu == 1


def test_the_sampler_draws_the_trainers_dataset_in_length_groups(tmp_path, tiny_model):
    # 10 examples of lengths 1..10, micro-batches of 2: groups of 2 x 4 = 8, each longest first
    data = SupervisedDataset([{"input_ids": [1] * n, "labels": [1] * n} for n in range(1, 11)])
    trainer = LengthGroupedTrainer(
        tiny_model, _training_args(tmp_path), train_dataset=data, train_samples=12
    )
    sampler = trainer._get_train_sampler()
    order = list(sampler)
    assert len(order) == 12 and set(order) == set(range(10))  # 12 drawn: one pass and 2 more
    lengths = data.lengths()
    for group in (order[:8], order[8:]):
        assert [lengths[i] for i in group] == sorted((lengths[i] for i in group), reverse=True)


def _probe_method(reference=None) -> Method:
    """A method whose loss is the stream's `value` and whose one part is `part` = value."""

    def compute_loss(model, inputs, config):
        value = inputs["forget"]["value"]
        return value, {"part": float(value)}

    kinds = reference or {}
    return Method("probe", object, compute_loss, "probe", reference=lambda config: kinds)


def _unlearn_trainer(tmp_path, model, method=None, **kwargs) -> UnlearnTrainer:
    return UnlearnTrainer(
        model, _training_args(tmp_path), method=method or _probe_method(), method_config=None,
        **kwargs,
    )  # fmt: skip


def test_loss_parts_are_averaged_over_the_steps_since_the_last_log(tmp_path, tiny_model):
    trainer = _unlearn_trainer(tmp_path, tiny_model)
    loss = trainer.compute_loss(tiny_model, {"forget": {"value": torch.tensor(1.0)}})
    assert isinstance(loss, torch.Tensor) and loss.item() == 1.0
    trainer.compute_loss(tiny_model, {"forget": {"value": torch.tensor(0.0)}})
    trainer.compute_loss(tiny_model, {"forget": {"value": torch.tensor(0.0)}})
    trainer.log({"grad_norm": 1.0})  # no loss: the parts wait for the step's log
    trainer.log({"loss": 1.0})
    assert trainer.state.log_history[-1]["part"] == 0.333333  # 1/3, 6 decimals
    assert "part" not in trainer.state.log_history[-2]
    assert trainer._mean_components() == {}  # nothing since the last log
    trainer.compute_loss(tiny_model, {"forget": {"value": torch.tensor(3.0)}})
    trainer.log({"loss": 3.0})
    assert trainer.state.log_history[-1]["part"] == 3.0  # the count starts again from 0


def test_compute_loss_with_outputs_gives_none_for_them(tmp_path, tiny_model):
    trainer = _unlearn_trainer(tmp_path, tiny_model)
    loss, outputs = trainer.compute_loss(
        tiny_model, {"forget": {"value": torch.tensor(2.0)}}, return_outputs=True
    )
    assert loss.item() == 2.0 and outputs is None


def _forget_stream() -> dict:
    ids = torch.tensor([[3, 4, 5, 6]])
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.tensor([[-100, 4, 5, 6]]),
        "value": torch.tensor(0.0),
    }


@pytest.mark.parametrize("bf16", [False, True])
def test_a_live_reference_is_computed_under_the_policys_autocast(tmp_path, tiny_model, bf16):
    method = _probe_method({"forget": TOKEN_LOGITS})
    trainer = _unlearn_trainer(tmp_path, tiny_model, method, live_reference=tiny_model)
    trainer.args.bf16 = bf16
    inputs = {"forget": _forget_stream()}
    trainer.compute_loss(tiny_model, inputs)
    with torch.no_grad(), precision.autocast(CPU, bf16):
        expected = reference_values(tiny_model, _forget_stream(), TOKEN_LOGITS)
    with torch.no_grad(), precision.autocast(CPU, not bf16):
        other = reference_values(tiny_model, _forget_stream(), TOKEN_LOGITS)
    got = inputs["forget"]["ref_token_values"]
    assert torch.equal(got, expected["ref_token_values"])
    assert not torch.equal(got, other["ref_token_values"])  # the two precisions differ


def test_without_a_live_reference_nothing_is_filled(tmp_path, tiny_model):
    method = _probe_method({"forget": TOKEN_LOGITS})
    trainer = _unlearn_trainer(tmp_path, tiny_model, method)
    inputs = {"forget": _forget_stream()}
    trainer.compute_loss(tiny_model, inputs)
    assert "ref_token_values" not in inputs["forget"]


def test_prepare_input_keeps_reference_values_and_moves_the_rest(tmp_path, tiny_model):
    trainer = _unlearn_trainer(tmp_path, tiny_model)
    stream = {"input_ids": torch.tensor([[1, 2]]), "ref_seq_logp": torch.tensor([-1.5])}
    prepared = trainer._prepare_input(stream)
    assert set(prepared) == {"input_ids", "ref_seq_logp"}
    assert prepared["ref_seq_logp"].dtype == torch.float32
    assert torch.equal(prepared["input_ids"], stream["input_ids"])
    assert torch.equal(trainer._prepare_input(torch.tensor([7])), torch.tensor([7]))
    assert trainer._prepare_input({"input_ids": stream["input_ids"]}).keys() == {"input_ids"}
