"""Multi-process runs (``torchrun`` / ``accelerate launch``): ranks, shared work, saving.

The launchers set ``WORLD_SIZE`` and ``RANK``. The process group is started through
accelerate's ``PartialState`` (the same singleton the Trainer uses later) the first time a
collective is needed, with gloo on CPU and NCCL on GPUs, and with the Trainer's timeout
(``ddp_timeout``), not NCCL's shorter default: the Trainer does not start it again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path

import torch

from ..errors import TifError

# Seconds a collective may wait for the other ranks (e.g. while rank 0 alone runs an inline
# identifier); TrainingArguments' ddp_timeout default, which schedule.py passes on too.
DDP_TIMEOUT_S = 1800


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def cpu_only() -> bool:
    """Several processes and no GPU: accelerate then needs ``cpu=True`` to use gloo."""
    return world_size() > 1 and not torch.cuda.is_available()


def process_group_options() -> dict:
    """Keyword arguments for ``init_process_group`` (through accelerate's ``PartialState``)."""
    return {"timeout": timedelta(seconds=DDP_TIMEOUT_S)}


def _start():
    from accelerate import PartialState

    return PartialState(cpu=cpu_only(), **process_group_options())


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for in one process)."""
    if world_size() > 1:
        _start()
        torch.distributed.barrier()


def sum_over_ranks(values: Sequence[float], device) -> list[float]:
    """The element-wise sum of ``values`` over all ranks (each rank passes as many, in the same
    order); ``values`` itself in one process."""
    if world_size() == 1:
        return list(values)
    _start()
    totals = torch.tensor(list(values), dtype=torch.float64, device=device)
    torch.distributed.all_reduce(totals)
    return totals.tolist()


def training_device() -> torch.device:
    """This process's accelerator device (``cuda:LOCAL_RANK``), or the CPU."""
    if world_size() == 1 and not torch.cuda.is_available():
        return torch.device("cpu")
    return _start().device


def run_on_main(compute: Callable[[], object]):
    """Run ``compute`` on rank 0 only and give every rank its result (errors too)."""
    if world_size() == 1:
        return compute()
    _start()
    payload: list = [None]
    failure: Exception | None = None
    if is_main_process():
        try:
            payload = [("ok", compute())]
        except Exception as err:  # tell the other ranks, so that none waits forever
            failure, payload = err, [("error", str(err))]
    torch.distributed.broadcast_object_list(payload, src=0)
    status, value = payload[0]
    if failure is not None:
        raise failure
    if status == "error":
        raise TifError(f"rank 0 failed: {value}")
    return value


def shard_and_gather(items: Sequence, compute: Callable[[list], list]) -> list:
    """Apply ``compute`` to a disjoint shard per rank (``items[rank::world]``); gather in order."""
    n = world_size()
    if n == 1:
        return compute(list(items))
    _start()
    parts: list = [None] * n
    torch.distributed.all_gather_object(parts, compute(list(items[rank() :: n])))
    return interleave(parts)


def interleave(parts: Sequence[list]) -> list:
    """Undo round-robin sharding: ``parts[k]`` holds items k, k + n, k + 2n, ..."""
    gathered: list = [None] * sum(len(part) for part in parts)
    for index, part in enumerate(parts):
        gathered[index :: len(parts)] = part
    return gathered


def gathered_state_dict(trainer) -> dict | None:
    """Under DeepSpeed, the full state dict (a collective: every rank calls it); else None."""
    if not getattr(trainer, "is_deepspeed_enabled", False):
        return None
    return trainer.accelerator.get_state_dict(trainer.deepspeed)


def zero_stage_from_env(env: Mapping[str, str]) -> int:
    """The DeepSpeed ZeRO stage ``accelerate launch`` set up for this process (0: no DeepSpeed).

    accelerate switches DeepSpeed on with ``ACCELERATE_USE_DEEPSPEED=true``; the stage is the
    DeepSpeed config file's ``zero_optimization.stage`` when one is given
    (``ACCELERATE_DEEPSPEED_CONFIG_FILE``), else ``ACCELERATE_DEEPSPEED_ZERO_STAGE``, else 2
    (accelerate's default)."""
    if env.get("ACCELERATE_USE_DEEPSPEED", "false").lower() != "true":
        return 0
    stage = _config_file_stage(env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE", "none"))
    if stage is None:
        stage = env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") or 2
    return int(stage)


def _config_file_stage(path: str) -> int | None:
    """``zero_optimization.stage`` of a DeepSpeed JSON config; None when absent or unreadable
    (DeepSpeed itself then says what is wrong with the file)."""
    if path in ("", "none"):
        return None
    try:
        stage = json.loads(Path(path).read_text(encoding="utf-8"))["zero_optimization"]["stage"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stage if isinstance(stage, int) else None


# What fails under ZeRO-3 only after training, and why: refused before it starts.
NOT_UNDER_ZERO3 = {
    "merge_lora": (
        "--merge-lora",
        "the base weights are sharded over the processes, so none can merge the adapters into "
        "them; save the adapter folder and merge it afterwards (any --model option loads it "
        "merged)",
    ),
    "keep_best": (
        "--keep-best",
        "one process cannot save or load the best weights of a sharded model",
    ),
    "eval_every": (
        "--eval-every",
        "each process evaluates on its own, but a sharded model's forward pass needs all of "
        "them; evaluate the saved model with tif eval tofu",
    ),
}


def check_zero3_options(config, stage: int) -> None:
    """Refuse, before training, the options that would fail after it under ZeRO-3."""
    if stage < 3:
        return
    for field, (option, why) in NOT_UNDER_ZERO3.items():
        if getattr(config, field, None):
            raise TifError(f"{option} cannot be used under DeepSpeed ZeRO-3: {why}")
