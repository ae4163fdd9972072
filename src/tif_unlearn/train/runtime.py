"""What surrounds a training run: refusals of what the hardware would do wrongly or slowly,
the precision ``--dtype auto`` picks, experiment tracking, and the upload to the hub."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from pathlib import Path

import torch

from ..config.schema import TrainConfig
from ..devices import one_gpu_notice
from ..errors import TifError
from .distributed import (
    check_zero3_options,
    training_device,
    world_size,
    zero_stage_from_env,
)
from .precision import check_bf16, check_half_precision_weights, training_precision

log = logging.getLogger("tif_unlearn")


TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def check_tracker(config: TrainConfig) -> None:
    """``--report-to X`` needs X's package: say so before any model is loaded."""
    import importlib.util

    package = TRACKER_PACKAGES.get(config.report_to)
    if package and importlib.util.find_spec(package) is None:
        raise TifError(
            f"--report-to {config.report_to} needs the {package} package: "
            f"pip install {package} (or tif-unlearn[tracking])"
        )


@contextlib.contextmanager
def tracking_dir(config: TrainConfig):
    """TensorBoard writes into ``<out>.tensorboard/`` (transformers 5 reads the folder from
    ``TENSORBOARD_LOGGING_DIR``; the trainer's own output folder is a temporary one)."""
    if config.report_to != "tensorboard":
        yield
        return
    previous = os.environ.get("TENSORBOARD_LOGGING_DIR")
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(Path(f"{config.out.rstrip('/')}.tensorboard"))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
        else:
            os.environ["TENSORBOARD_LOGGING_DIR"] = previous


def push_if_asked(config: TrainConfig) -> None:
    """``--push-to-hub``: upload the saved folder (never a partial one: it runs last)."""
    if config.push_to_hub:
        from .hub import push_folder

        url = push_folder(Path(config.out), config.push_to_hub, private=config.hub_private)
        log.warning("uploaded %s to %s", config.out, url)


def resolve_precision(config):
    """``config`` with ``--dtype auto`` decided for this device, and what was picked and why
    (logged once the inputs are checked, recorded in ``tif_run.json``)."""
    dtype, bf16, reason = training_precision(config.dtype, config.bf16, training_device())
    return dataclasses.replace(config, dtype=dtype, bf16=bf16), reason


def check_hardware(config: TrainConfig) -> None:
    """Refuse, before any model is loaded, what the hardware would do wrongly or slowly."""
    notice = one_gpu_notice(torch.cuda.device_count(), world_size())
    if notice:  # the trainer then keeps to cuda:0 (trainer.one_gpu_per_process)
        log.warning(notice)
    check_half_precision_weights(config.dtype, config.lora_r)
    check_zero3_options(config, zero_stage_from_env(os.environ))
    if config.bf16:
        check_bf16(training_device())
