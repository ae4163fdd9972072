"""Unlearning batches: forget examples, a randomly paired retain example each, padding, grouping.

A dataset item is a dict of *streams*: ``{"forget": ex, "retain": ex, "idk": ex}`` (retain and
idk only when the method uses them). Each stream example is a dict of lists from
``EncodedExample.as_dict()`` plus, when cached, ``ref_token_values`` (one float per position)
and ``ref_seq_logp`` (one float). The collator pads every stream separately.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch

from ..tokens import IGNORE_INDEX

_PAD_VALUES = {"labels": IGNORE_INDEX, "uw_mask": False, "gw_mask": False, "ref_token_values": 0.0}
_DTYPES = {"uw_mask": torch.bool, "gw_mask": torch.bool, "ref_token_values": torch.float32}


class UnlearnDataset(torch.utils.data.Dataset):
    """Forget examples, each paired with a seeded random retain example (and idk example)."""

    def __init__(
        self,
        forget: Sequence[dict],
        retain: Sequence[dict] | None = None,
        idk: Sequence[dict] | None = None,
        *,
        seed: int = 0,
    ):
        if not forget:
            raise ValueError("the forget set is empty")
        if idk is not None and len(idk) != len(forget):
            raise ValueError("idk examples must pair one-to-one with forget examples")
        self.forget, self.retain, self.idk = list(forget), retain, idk
        rng = random.Random(seed)
        self.retain_index = [rng.randrange(len(retain)) for _ in forget] if retain else None

    def __len__(self) -> int:
        return len(self.forget)

    def __getitem__(self, index: int) -> dict[str, dict]:
        item = {"forget": self.forget[index]}
        if self.retain_index is not None:
            item["retain"] = self.retain[self.retain_index[index]]
        if self.idk is not None:
            item["idk"] = self.idk[index]
        return item

    def lengths(self) -> list[int]:
        return [len(ex["input_ids"]) for ex in self.forget]


def pad_stream(examples: Sequence[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad one stream of examples into (B, T) tensors, plus ``attention_mask``."""
    max_len = max(len(ex["input_ids"]) for ex in examples)
    batch: dict[str, torch.Tensor] = {}
    for key in examples[0]:
        if key == "ref_seq_logp":
            batch[key] = torch.tensor([ex[key] for ex in examples], dtype=torch.float32)
            continue
        pad = pad_token_id if key == "input_ids" else _PAD_VALUES.get(key, 0)
        rows = [list(ex[key]) + [pad] * (max_len - len(ex[key])) for ex in examples]
        batch[key] = torch.tensor(rows, dtype=_DTYPES.get(key, torch.long))
    lengths = torch.tensor([len(ex["input_ids"]) for ex in examples])
    batch["attention_mask"] = (torch.arange(max_len)[None, :] < lengths[:, None]).long()
    return batch


class UnlearnCollator:
    """Collate dataset items (dicts of streams) into a dict of padded stream batches."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, items: Sequence[dict[str, dict]]) -> dict[str, dict[str, torch.Tensor]]:
        return {
            stream: pad_stream([item[stream] for item in items], self.pad_token_id)
            for stream in items[0]
        }


class LengthGroupedSampler(torch.utils.data.Sampler[int]):
    """A fresh random order every epoch, sorted by length only inside small shuffled groups.

    Each epoch is a new permutation (seeded by ``seed + epoch``), so the micro-batches differ
    from one epoch to the next; inside each run of ``group_batches`` micro-batches the examples
    are sorted longest first, which limits padding without fixing the batches.
    ``num_samples`` (default: one epoch) longer than the data walks on through the following
    epochs' permutations: the trainer then sees one long epoch in which only full accumulation
    windows are formed (``step_count="floor"``, the paper's step count).
    Deterministic for a given seed and epoch (``set_epoch`` is called by the trainer).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        *,
        group_batches: int = 4,
        num_samples: int | None = None,
    ):
        self.lengths, self.seed, self.epoch = list(lengths), seed, 0
        self.group_size = max(batch_size * group_batches, 1)
        self.num_samples = num_samples or len(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def epoch_orders(self) -> list[int]:
        """``num_samples`` indices: the permutations of epochs ``epoch``, ``epoch + 1``, ..."""
        order: list[int] = []
        epoch = self.epoch
        while len(order) < self.num_samples:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order += torch.randperm(len(self.lengths), generator=generator).tolist()
            epoch += 1
        return order[: self.num_samples]

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_orders()
        for start in range(0, len(order), self.group_size):
            group = order[start : start + self.group_size]
            yield from sorted(group, key=lambda i: -self.lengths[i])
