"""Batches: padding per key, stream collation, retain pairing, length grouping (the reference
cache: test_streams.py)."""

from __future__ import annotations

import random

import pytest
import torch

from tif_unlearn.data.batches import (
    LengthGroupedSampler,
    UnlearnCollator,
    UnlearnDataset,
    pad_stream,
)

PAD = 7


def example(ids, labels, uw, gw, **extra) -> dict:
    return {"input_ids": ids, "labels": labels, "uw_mask": uw, "gw_mask": gw, **extra}


SHORT = example([5, 6], [-100, 6], [False, True], [False, False])
LONG = example([1, 2, 3, 4], [-100, -100, 3, 4], [False, False, True, False], [False] * 3 + [True])


# --------------------------------------------------------------------------- pad_stream


def test_pad_stream_pads_right_with_per_key_values():
    batch = pad_stream([SHORT, LONG], pad_token_id=PAD)
    assert batch["input_ids"].tolist() == [[5, 6, PAD, PAD], [1, 2, 3, 4]]
    assert batch["labels"].tolist() == [[-100, 6, -100, -100], [-100, -100, 3, 4]]
    assert batch["uw_mask"].tolist() == [[False, True, False, False], [False, False, True, False]]
    assert batch["gw_mask"].tolist() == [[False, False, False, False], [False, False, False, True]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


def test_pad_stream_dtypes_and_shapes():
    batch = pad_stream([SHORT, LONG], pad_token_id=PAD)
    assert batch["input_ids"].dtype == torch.long
    assert batch["labels"].dtype == torch.long
    assert batch["uw_mask"].dtype == torch.bool
    assert batch["gw_mask"].dtype == torch.bool
    assert batch["attention_mask"].dtype == torch.long
    assert all(t.shape == (2, 4) for t in batch.values())


def test_pad_stream_reference_values():
    short = {**SHORT, "ref_token_values": [0.0, 1.5], "ref_seq_logp": -2.25}
    long = {**LONG, "ref_token_values": [0.0, 0.5, -1.0, 3.0], "ref_seq_logp": -4.5}
    batch = pad_stream([short, long], pad_token_id=PAD)
    logits = batch["ref_token_values"]
    assert logits.dtype == torch.float32 and logits.shape == (2, 4)
    assert logits.tolist() == [[0.0, 1.5, 0.0, 0.0], [0.0, 0.5, -1.0, 3.0]]
    seq = batch["ref_seq_logp"]
    assert seq.dtype == torch.float32 and seq.shape == (2,)
    assert seq.tolist() == [-2.25, -4.5]


def test_pad_stream_single_example_has_no_padding():
    batch = pad_stream([LONG], pad_token_id=PAD)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1]]


# --------------------------------------------------------------------------- collator


def test_collator_pads_each_stream_to_its_own_length():
    retain_a = {
        "input_ids": [9] * 6,
        "labels": [9] * 6,
        "uw_mask": [False] * 6,
        "gw_mask": [True] * 6,
    }
    retain_b = {
        "input_ids": [8] * 3,
        "labels": [8] * 3,
        "uw_mask": [False] * 3,
        "gw_mask": [True] * 3,
    }
    items = [{"forget": SHORT, "retain": retain_a}, {"forget": LONG, "retain": retain_b}]
    batch = UnlearnCollator(pad_token_id=PAD)(items)
    assert set(batch) == {"forget", "retain"}
    assert batch["forget"]["input_ids"].shape == (2, 4)
    assert batch["retain"]["input_ids"].shape == (2, 6)
    assert batch["retain"]["input_ids"].tolist() == [[9] * 6, [8, 8, 8, PAD, PAD, PAD]]
    assert batch["retain"]["labels"][1].tolist() == [8, 8, 8, -100, -100, -100]
    assert batch["retain"]["attention_mask"].tolist() == [[1] * 6, [1, 1, 1, 0, 0, 0]]
    assert batch["forget"]["input_ids"].tolist() == [[5, 6, PAD, PAD], [1, 2, 3, 4]]


def test_collator_of_a_single_item_is_that_item_unpadded():
    batch = UnlearnCollator(pad_token_id=PAD)([{"forget": SHORT}])  # a micro-batch of one
    assert set(batch) == {"forget"}
    assert batch["forget"]["input_ids"].tolist() == [SHORT["input_ids"]]
    assert batch["forget"]["attention_mask"].tolist() == [[1, 1]]


# --------------------------------------------------------------------------- dataset


def tagged(n: int, tag: str) -> list[dict]:
    return [{"input_ids": [i] * (i % 5 + 1), "tag": f"{tag}{i}"} for i in range(n)]


FORGET = tagged(40, "f")
RETAIN = tagged(12, "r")


def retain_tags(dataset: UnlearnDataset) -> list[str]:
    return [dataset[i]["retain"]["tag"] for i in range(len(dataset))]


def test_retain_pairing_is_deterministic_for_a_seed():
    first = retain_tags(UnlearnDataset(FORGET, RETAIN, seed=3))
    second = retain_tags(UnlearnDataset(FORGET, RETAIN, seed=3))
    assert first == second


def test_retain_pairing_differs_across_seeds():
    pairings = {tuple(retain_tags(UnlearnDataset(FORGET, RETAIN, seed=s))) for s in range(4)}
    assert len(pairings) == 4


def test_retain_pairing_uses_only_valid_retain_examples():
    retain_set = {ex["tag"] for ex in RETAIN}
    for seed in range(5):
        dataset = UnlearnDataset(FORGET, RETAIN, seed=seed)
        assert all(0 <= j < len(RETAIN) for j in dataset.retain_index)
        tags = retain_tags(dataset)
        assert set(tags) <= retain_set
        # Random draws over 40 forget items should reach more than one retain example.
        assert len(set(tags)) > 1


def test_dataset_items_hold_forget_in_order_and_idk_one_to_one():
    idk = tagged(len(FORGET), "i")
    dataset = UnlearnDataset(FORGET, RETAIN, idk, seed=0)
    assert len(dataset) == len(FORGET)
    for i in (0, 17, 39):
        item = dataset[i]
        assert set(item) == {"forget", "retain", "idk"}
        assert item["forget"]["tag"] == f"f{i}"
        assert item["idk"]["tag"] == f"i{i}"


def test_dataset_without_retain_or_idk_has_forget_only():
    dataset = UnlearnDataset(FORGET)
    assert set(dataset[0]) == {"forget"}
    assert dataset.lengths() == [len(ex["input_ids"]) for ex in FORGET]


def test_idk_count_mismatch_raises():
    with pytest.raises(ValueError, match="one-to-one"):
        UnlearnDataset(FORGET, RETAIN, tagged(len(FORGET) - 1, "i"))


def test_empty_forget_set_raises():
    with pytest.raises(ValueError, match="empty"):
        UnlearnDataset([], RETAIN)


# --------------------------------------------------------------------------- sampler


def random_lengths(n: int = 256, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(5, 300) for _ in range(n)]


def padding(order: list[int], lengths: list[int], batch_size: int) -> int:
    """Σ over batches of (max_len · B − Σ lengths): the pad tokens a right-padded batch holds."""
    total = 0
    for start in range(0, len(order), batch_size):
        batch = [lengths[i] for i in order[start : start + batch_size]]
        total += max(batch) * len(batch) - sum(batch)
    return total


def test_sampler_yields_a_permutation():
    lengths = random_lengths(101)
    sampler = LengthGroupedSampler(lengths, batch_size=4, seed=0)
    order = list(sampler)
    assert len(sampler) == 101
    assert sorted(order) == list(range(101))


def test_sampler_is_deterministic_per_seed_and_epoch():
    lengths = random_lengths()
    a = LengthGroupedSampler(lengths, batch_size=4, seed=5)
    b = LengthGroupedSampler(lengths, batch_size=4, seed=5)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    assert list(a) == list(a)  # iterating again gives the same order


def test_sampler_order_changes_with_epoch_and_seed():
    lengths = random_lengths()
    sampler = LengthGroupedSampler(lengths, batch_size=4, seed=5)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch0 != epoch1
    assert sorted(epoch0) == sorted(epoch1)
    other_seed = list(LengthGroupedSampler(lengths, batch_size=4, seed=99))
    assert other_seed != epoch0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampler_reduces_padding_vs_random_order(seed):
    lengths = random_lengths(seed=seed)
    batch_size = 4
    grouped = padding(list(LengthGroupedSampler(lengths, batch_size, seed=seed)), lengths, 4)
    generator = torch.Generator().manual_seed(seed)
    shuffled = padding(torch.randperm(len(lengths), generator=generator).tolist(), lengths, 4)
    # Sorting inside groups of 4 micro-batches leaves neighbours of similar length: less padding.
    assert grouped < 0.5 * shuffled


def micro_batches(order: list[int], batch_size: int) -> list[frozenset[int]]:
    return [frozenset(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]


def test_sampler_reshuffles_batches_every_epoch_with_the_tofu_preset_shape():
    # forget01 under the TOFU preset: 40 examples, micro-batch 4, 8 accumulation steps. Sorting
    # a 256-example block used to fix 8 of the 10 micro-batches for every epoch.
    lengths = random_lengths(40, seed=3)
    sampler = LengthGroupedSampler(lengths, 4, seed=0)
    epochs = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        epochs.append(micro_batches(list(sampler), 4))
    for earlier, later in ((0, 1), (1, 2), (0, 2)):
        assert len(set(epochs[earlier]) & set(epochs[later])) <= 1


def test_sampler_does_not_always_start_with_the_longest_examples():
    lengths = list(range(10, 50))  # distinct lengths: 49 is the longest
    sampler = LengthGroupedSampler(lengths, 4, seed=0)
    firsts = []
    for epoch in range(10):
        sampler.set_epoch(epoch)
        firsts.append(max(lengths[i] for i in list(sampler)[:4]))
    assert len(set(firsts)) > 1 and min(firsts) < 49


def test_sampler_longer_than_the_data_walks_through_later_epochs():
    lengths = random_lengths(40, seed=1)
    sampler = LengthGroupedSampler(lengths, 4, seed=7, group_batches=1, num_samples=96)
    order = list(sampler)
    assert len(sampler) == len(order) == 96
    assert sorted(order[:40]) == sorted(order[40:80]) == list(range(40))
    assert len(set(order[80:])) == 16  # the start of a third epoch: no repeats within it
    first, second = micro_batches(order[:40], 4), micro_batches(order[40:80], 4)
    assert len(set(first) & set(second)) <= 1  # each epoch is reshuffled


def seeded_permutation(n: int, seed: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def test_sampler_with_groups_of_one_is_the_seeded_permutation_of_each_epoch():
    # One example per group: nothing to sort, so epoch e is randperm seeded with seed + e.
    lengths = random_lengths(30, seed=4)
    sampler = LengthGroupedSampler(lengths, batch_size=1, seed=5, group_batches=1, num_samples=60)
    sampler.set_epoch(2)
    assert list(sampler) == seeded_permutation(30, 7) + seeded_permutation(30, 8)


def test_sampler_sorts_runs_of_four_micro_batches_longest_first():
    # Default group_batches = 4: with micro-batches of 2, each run of 8 indices of the seeded
    # permutation is sorted by length, longest first (distinct lengths: no ties).
    lengths = random.Random(6).sample(range(10, 100), 32)
    order = list(LengthGroupedSampler(lengths, batch_size=2, seed=3))
    permutation = seeded_permutation(32, 3)
    for start in range(0, 32, 8):
        run = sorted(permutation[start : start + 8], key=lambda i: lengths[i], reverse=True)
        assert order[start : start + 8] == run
