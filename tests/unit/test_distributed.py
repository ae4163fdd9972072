"""Helpers of the multi-process support, with one process or a faked rank (the 2-process runs
are in tests/integration)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch

from tif_unlearn.train.distributed import (
    DDP_TIMEOUT_S,
    barrier,
    interleave,
    process_group_options,
    run_on_main,
    shard_and_gather,
    sum_over_ranks,
    training_device,
    world_size,
)


@pytest.mark.parametrize("n_items", [0, 1, 5, 6])
@pytest.mark.parametrize("n_ranks", [1, 2, 3])
def test_interleave_undoes_round_robin_shards(n_items, n_ranks):
    items = [f"item{i}" for i in range(n_items)]
    shards = [items[rank::n_ranks] for rank in range(n_ranks)]  # what each rank computes
    assert interleave(shards) == items


def test_single_process_runs_everything_locally(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_size() == 1
    assert shard_and_gather([1, 2, 3], lambda shard: [x * 10 for x in shard]) == [10, 20, 30]
    assert run_on_main(lambda: "annotated") == "annotated"


def test_the_process_group_gets_the_trainers_timeout_not_nccls_default(monkeypatch):
    # NCCL's own default is 10 minutes; the Trainer (ddp_timeout) would give 30, but the group
    # exists before TrainingArguments do, so it must be created with that timeout.
    import accelerate
    from transformers import TrainingArguments

    created = {}

    class FakeState:
        def __init__(self, cpu=False, **kwargs):
            created.update(kwargs, cpu=cpu)
            self.device = torch.device("cpu")

    monkeypatch.setattr(accelerate, "PartialState", FakeState)
    monkeypatch.setenv("WORLD_SIZE", "2")
    training_device()
    trainer_default = TrainingArguments.__dataclass_fields__["ddp_timeout"].default
    assert created["timeout"] == timedelta(seconds=trainer_default)
    assert process_group_options() == {"timeout": timedelta(seconds=DDP_TIMEOUT_S)}


def test_barrier_and_sums_over_ranks_need_no_process_group_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    barrier()
    assert sum_over_ranks([1.5, 2.0], "cpu") == [1.5, 2.0]
