"""End-to-end runs: records -> (annotated) examples -> batches -> trainer -> model folder.

``run_unlearn`` and ``run_finetune`` are what ``tif unlearn`` / ``tif finetune`` call; they are
also the Python API. Both follow one skeleton: check everything that needs no model (options,
output folder, hardware, inputs, checkpoints to resume), load the model, train, save the folder
atomically together with ``tif_run.json``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path

from ..config.builder import as_dict
from ..config.methods import method_config
from ..config.schema import FinetuneConfig, TrainConfig, UnlearnConfig
from ..data.batches import UnlearnCollator, UnlearnDataset, pad_stream
from ..errors import TifError
from ..methods import METHODS
from ..models import load_model
from ..recitation import check_recitation
from . import lora
from .checkpoints import fault_callbacks, fingerprint, prepare_checkpoints, trainer_output_dir
from .distributed import training_device, world_size, zero_stage_from_env
from .evaluation import eval_callback, eval_options
from .hub import require_token
from .inputs import hub_access, load_input, load_unlearn_inputs, window_inputs
from .output import check_output, finish_output
from .provenance import data_record, digests, run_record, sources_digest
from .runtime import check_hardware, check_tracker, resolve_precision, tracking_dir
from .schedule import step_plan, training_arguments
from .streams import (
    build_streams,
    encode_all,
    live_reference,
    token_counts,
    training_load_dtype,
)
from .trainer import FinetuneTrainer, SupervisedDataset, UnlearnTrainer

log = logging.getLogger("tif_unlearn")


def checked_config(config: TrainConfig) -> tuple[TrainConfig, str]:
    """Refuse what needs no input read (the output folder, the hardware, a missing tracker);
    return the config with ``--dtype auto`` decided and the reason for the precision."""
    check_output(config.out, config.model, config.overwrite)
    if config.push_to_hub:  # not after an hour of training
        require_token(config.push_to_hub)
    config, precision = resolve_precision(config)
    check_hardware(config)
    check_tracker(config)
    return config, precision


def resume_point(config: TrainConfig, data: dict[str, dict]) -> tuple[dict, str | None]:
    """The run's fingerprint (options and input digests) and the checkpoint to resume, if any."""
    run_fingerprint = fingerprint(config, digests(data))
    return run_fingerprint, prepare_checkpoints(config, run_fingerprint)


def load_training_model(config: TrainConfig, precision: str, *, caches_reference: bool):
    """The model to train, loaded straight onto this process's device (``model_casting.placement``:
    no whole copy of it in the process's own memory on the way). Under ZeRO-3 a fine-tuning
    run loads on the CPU instead: DeepSpeed moves only each process's shard to its GPU. An
    unlearning run needs the whole model on its GPU first, to cache the reference values
    (DeepSpeed shards it afterwards, so transformers' ``zero.Init`` at load is not used)."""
    sharded_later = zero_stage_from_env(os.environ) >= 3 and not caches_reference
    model, tokenizer = load_model(
        config.model,
        dtype=training_load_dtype(config),
        trust_remote_code=config.trust_remote_code,
        allow_pickle=config.allow_pickle,
        device=None if sharded_later else training_device(),
        **hub_access(config),
    )
    log.info("precision: %s", precision)
    return model, tokenizer


@contextlib.contextmanager
def scratch_folder(config: TrainConfig):
    """The trainer's temporary output folder (checkpoints go beside ``--out``), with tracking."""
    with tempfile.TemporaryDirectory(prefix="tif-trainer-") as scratch, tracking_dir(config):
        yield scratch


def fit(trainer_cls, config: TrainConfig, model, dataset, scratch: str, resume_from, **kwargs):
    """Build ``trainer_cls`` for the run's step plan and train, resuming from a checkpoint."""
    plan = step_plan(config, len(dataset))
    trainer = trainer_cls(
        model=model,
        args=training_arguments(config, plan, trainer_output_dir(config, scratch)),
        train_samples=plan.samples,
        train_dataset=dataset,
        **kwargs,
    )
    trainer.train(resume_from_checkpoint=resume_from)
    return trainer


def resolve_method(config: UnlearnConfig):
    if config.method not in METHODS:
        raise TifError(f"unknown method '{config.method}' (choose from {', '.join(METHODS)})")
    method = METHODS[config.method]
    return method, method_config(method, config)


def run_unlearn(config: UnlearnConfig, callbacks: list | None = None) -> Path:
    """Unlearn ``config.forget`` from ``config.model`` and save the result to ``config.out``.
    ``callbacks``: extra ``transformers.TrainerCallback`` objects (e.g. to evaluate or save
    the model at chosen steps)."""
    method, hyper = resolve_method(config)
    config, precision = checked_config(config)
    inputs = window_inputs(load_unlearn_inputs(config, method, hyper), config)
    data = data_record(config, ("forget", "retain", "refusals"))
    run_fingerprint, resume_from = resume_point(config, data)
    evaluation = eval_options(config)
    model, tokenizer = load_training_model(config, precision, caches_reference=True)
    reference = method.reference(hyper)
    model.to(training_device())  # a GGUF file loads on the CPU
    streams = build_streams(model, tokenizer, inputs, config, reference)
    model = lora.maybe_add_lora(model, config)  # after caching: the reference is the base model
    dataset = UnlearnDataset(
        streams["forget"], streams.get("retain"), streams.get("idk"), seed=config.seed
    )
    live = live_reference(config, model, reference)
    started = time.time()
    with scratch_folder(config) as scratch:
        evaluator = eval_callback(config, evaluation, tokenizer)
        faults = fault_callbacks(config, run_fingerprint)
        # A checkpoint's weights are loaded only in fit: reference values came from --model.
        trainer = fit(
            UnlearnTrainer, config, model, dataset, scratch, resume_from,
            data_collator=UnlearnCollator(tokenizer.pad_token_id),
            callbacks=[c for c in (evaluator, *faults) if c] + list(callbacks or ()),
            method=method, method_config=hyper, live_reference=live,
        )  # fmt: skip
        if evaluator:
            evaluator.restore_best(model)
    record = run_record(
        "unlearn", config, precision, trainer, started,
        method=method.name, method_config=as_dict(hyper), data=data,
        examples={name: len(examples) for name, examples in streams.items()},
        tokens=token_counts(streams["forget"]),
    )  # fmt: skip
    if evaluator:
        record.update(eval=evaluator.history, kept_best=evaluator.best)
    return finish_output(trainer, model, tokenizer, config, record)


def run_finetune(config: FinetuneConfig, callbacks: list | None = None) -> Path:
    """Supervised fine-tuning on QA records or plain texts (cut into token windows), e.g. to
    build TOFU or MUSE target and retain models."""
    config, precision = checked_config(config)
    records = [r for source in config.data_sources() for r in load_input(config, source)]
    records = window_inputs({"data": records}, config)["data"]
    data = {"data": {"source": config.data, "sha256": sources_digest(config.data_sources())}}
    run_fingerprint, resume_from = resume_point(config, data)
    model, tokenizer = load_training_model(config, precision, caches_reference=False)
    model = lora.maybe_add_lora(model, config)
    dataset = SupervisedDataset(encode_all(tokenizer, records, config.max_length))
    started = time.time()
    with scratch_folder(config) as scratch:
        trainer = fit(
            FinetuneTrainer, config, model, dataset, scratch, resume_from,
            data_collator=lambda items: pad_stream(items, tokenizer.pad_token_id),
            callbacks=fault_callbacks(config, run_fingerprint) + list(callbacks or ()),
        )  # fmt: skip
    record = run_record(
        "finetune", config, precision, trainer, started,
        data=data["data"], examples=len(dataset),
    )  # fmt: skip
    out = finish_output(trainer, model, tokenizer, config, record)
    if world_size() == 1:  # one process: the trained model is whole here
        check_recitation(model, tokenizer, records, config.recall_check)
    return out
