"""Pure helpers of the multi-process support (the 2-process run is tests/integration)."""

from __future__ import annotations

import pytest

from tif_unlearn.train.distributed import interleave, run_on_main, shard_and_gather, world_size


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
