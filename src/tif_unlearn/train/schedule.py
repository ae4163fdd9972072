"""How long a run trains: the optimizer-step plan and the ``TrainingArguments`` built from it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import TrainingArguments

from ..config.schema import TrainConfig
from .checkpoints import save_options
from .distributed import DDP_TIMEOUT_S, cpu_only, training_device, world_size


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
        ddp_timeout=DDP_TIMEOUT_S,  # the process group already exists: kept in step with it
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
