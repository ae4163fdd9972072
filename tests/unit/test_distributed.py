"""Helpers of the multi-process support, with one process or a faked rank (the 2-process runs
are in tests/integration)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import torch

from tif_unlearn.train import distributed
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
from tif_unlearn.train.evaluation import EvalCallback, best_dir


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


@pytest.mark.parametrize("rank", [0, 1])
def test_keep_best_is_saved_by_rank_0_only_and_every_rank_keeps_its_choice(
    rank, tiny_model, tmp_path, monkeypatch
):
    rank_0_choice = {"step": 1, "metric": "retain_prob", "value": 0.5}

    def broadcast(payload, src):  # rank 0 sends its payload; the others receive it
        if rank != 0:
            payload[0] = ("ok", rank_0_choice)

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setattr(distributed, "_start", lambda: None)
    monkeypatch.setattr(torch.distributed, "broadcast_object_list", broadcast)
    callback = EvalCallback.__new__(EvalCallback)  # no eval data needed to keep weights
    callback.keep_best, callback.best = ("retain_prob", "max"), None
    callback.best_folder = tmp_path / "out.best"
    callback.scratch = tmp_path / "scratch"  # where every rank used to save its own copy

    callback._maybe_keep(tiny_model, {"step": 1, "retain_prob": 0.5})

    assert callback.best == rank_0_choice
    saved = sorted(p.name for p in tmp_path.rglob("*.safetensors"))
    assert saved == (["model.safetensors"] if rank == 0 else [])
    assert (tmp_path / "out.best" / "model.safetensors").is_file() == (rank == 0)


def test_keep_best_weights_are_kept_beside_out(tmp_path):
    assert best_dir(tmp_path / "runs" / "tif") == tmp_path / "runs" / "tif.best"
    assert best_dir("runs/tif/") == Path("runs/tif.best").resolve()
