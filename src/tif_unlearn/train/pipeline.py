"""End-to-end runs: records -> (annotated) examples -> batches -> trainer -> model folder.

``run_unlearn`` and ``run_finetune`` are what ``tif unlearn`` / ``tif finetune`` call; they are
also the Python API. Every input is validated before the model is loaded, and the output
folder is written atomically together with ``tif_run.json``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainingArguments

from .. import __version__
from ..config.schema import FinetuneConfig, TrainConfig, UnlearnConfig, as_dict, method_config
from ..data.batches import UnlearnCollator, UnlearnDataset, pad_stream
from ..data.encoding import encode_record
from ..data.loaders import load_records, load_refusals, parse_field_map
from ..data.records import QARecord, TextRecord
from ..data.windows import window_records
from ..errors import DataError, TifError
from ..methods import METHODS
from ..models import load_model, load_tokenizer, save_model
from ..report.model_card import model_card
from . import lora
from .checkpoints import (
    fault_callbacks,
    fingerprint,
    prepare_checkpoints,
    remove_checkpoints,
    save_options,
    trainer_output_dir,
)
from .distributed import (
    cpu_only,
    gathered_state_dict,
    is_main_process,
    rank,
    run_on_main,
    shard_and_gather,
    training_device,
    world_size,
)
from .runtime import check_hardware, check_tracker, push_if_asked, resolve_precision, tracking_dir
from .trainer import (
    FinetuneTrainer,
    SupervisedDataset,
    UnlearnTrainer,
    cache_reference,
    frozen_copy,
)

RUN_FILE = "tif_run.json"
log = logging.getLogger("tif_unlearn")


def check_output(out: str, model: str, overwrite: bool) -> None:
    """Refuse to write over the input model, or into a non-empty folder without --overwrite."""
    out_path = Path(out)
    if Path(model).exists() and out_path.resolve() == Path(model).resolve():
        raise TifError(f"--out {out} is the input model folder; choose another folder")
    if out_path.exists() and not out_path.is_dir():
        raise TifError(f"--out {out} exists and is not a folder")
    if out_path.is_dir() and any(out_path.iterdir()) and not overwrite:
        raise TifError(f"--out {out} is not empty (pass --overwrite to replace it)")


def file_digest(source: str | None) -> str | None:
    if source is None or not Path(source).is_file():
        return None
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def library_versions() -> dict[str, str]:
    import transformers

    return {
        "tif_unlearn": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class StepPlan:
    """How many optimizer steps a run takes, how many warm up, and how many examples the
    sampler draws in the trainer's one epoch (None: one pass per epoch)."""

    steps: int
    warmup: int
    samples: int | None


def step_plan(config: TrainConfig, n_examples: int) -> StepPlan:
    """``ceil``: each epoch ends with a step, partial accumulation windows included.
    ``floor``: epochs flow into each other and only full windows step,
    floor(epochs · N / effective batch) steps (the TIF paper's recipe)."""
    per_step = config.batch_size * config.grad_accum * world_size()
    if config.step_count == "floor":
        steps_per_epoch = n_examples / per_step
        planned = max(math.floor(round(config.epochs * steps_per_epoch, 9)), 1)
    else:
        steps_per_epoch = math.ceil(n_examples / per_step)
        planned = math.ceil(steps_per_epoch * config.epochs)
    total = config.max_steps if config.max_steps > 0 else planned
    warmup = min(round(steps_per_epoch * config.warmup_epochs), max(total - 1, 0))
    samples = total * per_step if config.step_count == "floor" else None
    return StepPlan(total, warmup, samples)


def training_arguments(config: TrainConfig, plan: StepPlan, output_dir: str) -> TrainingArguments:
    scheduler = config.scheduler
    if scheduler == "constant" and plan.warmup:
        scheduler = "constant_with_warmup"
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        num_train_epochs=config.epochs,
        max_steps=plan.steps if plan.samples else config.max_steps,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=plan.warmup,
        lr_scheduler_type=scheduler,
        seed=config.seed,
        bf16=config.bf16,
        activation_checkpointing=config.gradient_checkpointing,
        # bf16 on a lone CPU process needs use_cpu, or TrainingArguments looks for a GPU.
        use_cpu=cpu_only() or (config.bf16 and training_device().type == "cpu"),
        logging_steps=1,
        **save_options(config),
        report_to=config.report_to,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def encode_all(tokenizer, records, max_length: int) -> list[dict]:
    return [encode_record(tokenizer, r, max_length=max_length).as_dict() for r in records]


def require_annotations(records, source: str) -> None:
    for record in records:
        if record.unwanted_spans is None:
            raise DataError(
                "record has no unwanted-word annotation (unwanted_spans); "
                "annotate the forget set with `tif identify` first",
                path=record.source or source,
            )


def idk_records(forget, refusals: list[str], seed: int) -> list[QARecord]:
    """Pair each forget question with a refusal drawn at random (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(refusals), (len(forget),), generator=generator).tolist()
    return [QARecord(r.question, refusals[i]) for r, i in zip(forget, picks, strict=True)]


def identify_inline(name: str, records: list) -> list:
    """Annotate forget records with an identifier's default options; drop the failures."""
    from ..identify import identify

    if name == "contrast":
        raise TifError("the contrast identifier needs two models: run `tif identify` first")
    result = identify(name, records)
    for index, reason in result.failures:
        log.warning("%s: not annotated by %s (%s): left out", records[index].source, name, reason)
    if result.n_ok == 0:
        raise TifError(f"no forget record could be annotated by '{name}'")
    return result.annotated()


def load_unlearn_inputs(config: UnlearnConfig, method, hyper) -> dict:
    """Load and validate every input record before any model is loaded."""
    field_map = parse_field_map(config.field_map)
    forget = load_records(config.forget, field_map=field_map)
    if config.identifier:
        if not method.needs_spans(hyper):
            raise TifError("--identifier applies to --method tif and to --targeted methods only")
        forget = run_on_main(lambda: identify_inline(config.identifier, forget))
    if method.needs_spans(hyper):
        require_annotations(forget, config.forget)
    if method.retain == "required" and not config.retain:
        raise TifError(f"method '{method.name}' needs a retain set (--retain)")
    retain = None
    if config.retain and method.retain != "unused":
        retain = load_records(config.retain, field_map=field_map)
    idk = None
    if method.uses_idk:
        if not all(isinstance(r, QARecord) for r in forget):
            raise TifError(
                f"method '{method.name}' needs question/answer forget records (it pairs each "
                f"question with a refusal); {config.forget} holds plain texts: use tif, ga, "
                "graddiff, npo or simnpo"
            )
        idk = idk_records(forget, load_refusals(config.refusals), config.seed)
    return {"forget": forget, "retain": retain, "idk": idk}


def window_inputs(inputs: dict, config: TrainConfig) -> dict:
    """Cut the text records of every input set into token windows (this loads the model's
    tokenizer alone, so that a text too short fails before the model is loaded)."""
    records = [r for name, rs in inputs.items() if name != "idk" for r in rs or ()]
    if not any(isinstance(r, TextRecord) for r in records):
        return inputs
    tokenizer = load_tokenizer(
        config.model, trust_remote_code=config.trust_remote_code, allow_pickle=config.allow_pickle
    )
    return {
        name: records
        if records is None or name == "idk"
        else window_records(
            records,
            tokenizer,
            length=config.window_length,
            stride=config.window_stride,
            short_texts=config.short_texts,
        )
        for name, records in inputs.items()
    }


def build_streams(model, tokenizer, inputs: dict, config: UnlearnConfig, reference: dict) -> dict:
    """Encode every stream and, unless the reference is live, cache its reference values."""
    streams = {}
    for name, records in inputs.items():
        if records is None:
            continue
        examples = encode_all(tokenizer, records, config.max_length)
        if name in reference and not config.live_reference:
            examples = shard_and_gather(  # one disjoint shard per process
                examples,
                lambda shard, kind=reference[name], name=name: cache_reference(
                    model,
                    shard,
                    kind,
                    pad_token_id=tokenizer.pad_token_id,
                    batch_size=config.reference_batch_size,
                    desc=f"{name} reference",
                    bf16=config.bf16,
                ),
            )
        streams[name] = examples
    return streams


def token_counts(examples: list[dict]) -> dict[str, int]:
    return {
        "uw_tokens": sum(sum(e["uw_mask"]) for e in examples),
        "gw_tokens": sum(sum(e["gw_mask"]) for e in examples),
    }


def eval_options(config: UnlearnConfig):
    """The --eval-every options, validated with their data before any model is loaded."""
    if not config.eval_every:
        return None
    from ..evaluate.during_training import TRAINING_EVAL_SETS, parse_keep_best
    from ..evaluate.tofu_data import TofuEvalOptions, load_eval_rows

    options = TofuEvalOptions(
        data_dir=config.eval_data_dir or "auto",
        forget_split=config.eval_forget_split,
        max_items=config.eval_max_items,
        max_new_tokens=32,
        sets=TRAINING_EVAL_SETS,
    )
    for name in options.sets:
        load_eval_rows(name, options)
    if config.keep_best:
        parse_keep_best(config.keep_best)
    return options


def eval_callback(config: UnlearnConfig, options, tokenizer, scratch: Path):
    """The evaluation-during-training callback, or None without --eval-every."""
    if options is None:
        return None
    from ..evaluate.during_training import EvalCallback

    return EvalCallback(tokenizer, options, config.eval_every, scratch, config.keep_best)


def save_output(trainer, model, tokenizer, config: TrainConfig, record: dict) -> None:
    """Save the trained model (the LoRA adapter folder, or merged) from rank 0 only."""
    state_dict = gathered_state_dict(trainer)  # a collective under DeepSpeed: every rank
    if not is_main_process():
        return
    record["saved_by_rank"] = rank()
    model = lora.model_to_save(model, config.merge_lora)
    card = {"README.md": model_card(record)}
    save_model(
        model,
        tokenizer,
        config.out,
        extra_json={RUN_FILE: record},
        state_dict=state_dict,
        extra_text=card,
    )


def run_unlearn(config: UnlearnConfig, callbacks: list | None = None) -> Path:
    """Unlearn ``config.forget`` from ``config.model`` and save the result to ``config.out``.
    ``callbacks``: extra ``transformers.TrainerCallback`` objects (e.g. to evaluate or save
    the model at chosen steps)."""
    if config.method not in METHODS:
        raise TifError(f"unknown method '{config.method}' (choose from {', '.join(METHODS)})")
    method = METHODS[config.method]
    hyper = method_config(method, config)
    check_output(config.out, config.model, config.overwrite)
    config, precision = resolve_precision(config)
    check_hardware(config)
    check_tracker(config)
    inputs = window_inputs(load_unlearn_inputs(config, method, hyper), config)
    digests = {
        name: file_digest(getattr(config, name)) for name in ("forget", "retain", "refusals")
    }
    run_fingerprint = fingerprint(config, digests)
    resume_from = prepare_checkpoints(config, run_fingerprint)
    evaluation = eval_options(config)
    model, tokenizer = load_model(
        config.model,
        dtype=config.dtype,
        trust_remote_code=config.trust_remote_code,
        allow_pickle=config.allow_pickle,
    )
    log.info("precision: %s", precision)
    reference = method.reference(hyper)
    model.to(training_device())
    streams = build_streams(model, tokenizer, inputs, config, reference)
    model = lora.maybe_add_lora(model, config)  # after caching: the reference is the base model
    dataset = UnlearnDataset(
        streams["forget"], streams.get("retain"), streams.get("idk"), seed=config.seed
    )
    live = None
    if config.live_reference and reference:
        live = lora.AdapterDisabledReference(model) if config.lora_r else frozen_copy(model)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tif-trainer-") as scratch, tracking_dir(config):
        evaluator = eval_callback(config, evaluation, tokenizer, Path(scratch))
        plan = step_plan(config, len(dataset))
        trainer = UnlearnTrainer(
            model=model,
            args=training_arguments(config, plan, trainer_output_dir(config, scratch)),
            train_samples=plan.samples,
            train_dataset=dataset,
            data_collator=UnlearnCollator(tokenizer.pad_token_id),
            callbacks=[c for c in (evaluator, *fault_callbacks(config, run_fingerprint)) if c]
            + list(callbacks or ()),
            method=method,
            method_config=hyper,
            live_reference=live,
        )
        # A checkpoint's weights are loaded only here: reference values came from --model.
        trainer.train(resume_from_checkpoint=resume_from)
        if evaluator:
            evaluator.restore_best(model)
    record = {
        "command": "unlearn",
        "config": as_dict(config),
        "method": method.name,
        "method_config": as_dict(hyper),
        "data": {
            name: {
                "source": getattr(config, name, None),
                "sha256": file_digest(getattr(config, name, None)),
            }
            for name in ("forget", "retain", "refusals")
        },
        "examples": {name: len(examples) for name, examples in streams.items()},
        "tokens": token_counts(streams["forget"]),
        "precision": precision,
        "versions": library_versions(),
        "world_size": world_size(),
        "train_seconds": round(time.time() - started, 2),
        "log": trainer.state.log_history,
    }
    if evaluator:
        record["eval"] = evaluator.history
        record["kept_best"] = evaluator.best
    save_output(trainer, model, tokenizer, config, record)
    if is_main_process():
        remove_checkpoints(config.out)
        push_if_asked(config)
    return Path(config.out)


def run_finetune(config: FinetuneConfig, callbacks: list | None = None) -> Path:
    """Supervised fine-tuning on QA records or plain texts (cut into token windows), e.g. to
    build TOFU or MUSE target and retain models."""
    check_output(config.out, config.model, config.overwrite)
    config, precision = resolve_precision(config)
    check_hardware(config)
    check_tracker(config)
    records = load_records(config.data, field_map=parse_field_map(config.field_map))
    records = window_inputs({"data": records}, config)["data"]
    run_fingerprint = fingerprint(config, {"data": file_digest(config.data)})
    resume_from = prepare_checkpoints(config, run_fingerprint)
    model, tokenizer = load_model(
        config.model,
        dtype=config.dtype,
        trust_remote_code=config.trust_remote_code,
        allow_pickle=config.allow_pickle,
    )
    log.info("precision: %s", precision)
    model = lora.maybe_add_lora(model, config)
    dataset = SupervisedDataset(encode_all(tokenizer, records, config.max_length))
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="tif-trainer-") as scratch, tracking_dir(config):
        plan = step_plan(config, len(dataset))
        trainer = FinetuneTrainer(
            model=model,
            args=training_arguments(config, plan, trainer_output_dir(config, scratch)),
            train_samples=plan.samples,
            train_dataset=dataset,
            data_collator=lambda items: pad_stream(items, tokenizer.pad_token_id),
            callbacks=fault_callbacks(config, run_fingerprint) + list(callbacks or ()),
        )
        trainer.train(resume_from_checkpoint=resume_from)
    record = {
        "command": "finetune",
        "config": as_dict(config),
        "data": {"source": config.data, "sha256": file_digest(config.data)},
        "examples": len(dataset),
        "precision": precision,
        "versions": library_versions(),
        "world_size": world_size(),
        "train_seconds": round(time.time() - started, 2),
        "log": trainer.state.log_history,
    }
    save_output(trainer, model, tokenizer, config, record)
    if is_main_process():
        remove_checkpoints(config.out)
        push_if_asked(config)
    return Path(config.out)
