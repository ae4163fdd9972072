"""UnlearnTrainer: a transformers.Trainer whose loss is the chosen unlearning method.

Reference values arrive inside the batch (cached by ``streams.cache_reference``), or the
trainer fills them every step from ``live_reference`` (``streams.live_reference``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import torch
from transformers import Trainer

from ..data.batches import LengthGroupedSampler
from ..methods.base import Method, reference_values
from .distributed import sum_over_ranks, world_size
from .precision import autocast

# Cached reference values: float32 whatever the Trainer does to the floating inputs (under
# DeepSpeed it casts them to the engine's dtype: bf16 would round a sequence log-prob of -150
# by up to 0.5 nat, so that Δ ≠ 0 at step 0).
REFERENCE_KEYS = ("ref_token_values", "ref_seq_logp")


class LengthGroupedTrainer(Trainer):
    """A Trainer whose batches are reshuffled every epoch and grouped by length within small
    groups (the dataset provides ``lengths()``). ``train_samples``: examples drawn in one trainer
    epoch when epochs flow into each other (``step_count="floor"``); None: one pass."""

    def __init__(self, *args, train_samples: int | None = None, **kwargs):
        one_gpu_per_process(kwargs.get("args", args[1] if len(args) > 1 else None))
        super().__init__(*args, **kwargs)
        self.train_samples = train_samples

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        # accelerate deals this single order out to the processes batch by batch: group whole
        # rounds of one micro-batch per process.
        batch = self.args.train_batch_size * self.args.world_size
        return LengthGroupedSampler(
            dataset.lengths(), batch, seed=self.args.seed, num_samples=self.train_samples
        )


def one_gpu_per_process(args) -> None:
    """One process with several visible GPUs trains on the first one (``runtime.check_hardware``
    says so): without this the Trainer would wrap the model in ``DataParallel`` and multiply
    the effective batch by the number of GPUs."""
    if args is not None and world_size() == 1 and args.n_gpu > 1:
        args._n_gpu = 1  # what transformers itself sets for model-parallel models


class UnlearnTrainer(LengthGroupedTrainer):
    """Trainer whose ``compute_loss`` calls the method hook on forget/retain/idk streams."""

    def __init__(self, *args, method: Method, method_config, live_reference=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.method, self.method_config = method, method_config
        self.live_reference = live_reference
        if isinstance(live_reference, torch.nn.Module):  # a frozen copy: onto this rank's device
            live_reference.to(self.args.device)
        self._component_sums: dict[str, float] = defaultdict(float)
        self._component_count = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.live_reference is not None:
            self._fill_live_reference(inputs)
        loss, components = self.method.compute_loss(model, inputs, self.method_config)
        for name, value in components.items():
            self._component_sums[name] += value
        self._component_count += 1
        return (loss, None) if return_outputs else loss

    def _prepare_input(self, data):
        """Move a batch to the device as the Trainer does, but keep the cached reference
        values of each stream in float32 (see ``REFERENCE_KEYS``)."""
        if not isinstance(data, Mapping) or not any(key in data for key in REFERENCE_KEYS):
            return super()._prepare_input(data)
        kept = {key: data[key].to(self.args.device) for key in REFERENCE_KEYS if key in data}
        rest = super()._prepare_input({k: v for k, v in data.items() if k not in kept})
        return {**rest, **kept}

    def _fill_live_reference(self, inputs: dict) -> None:
        # the policy's precision: DeepSpeed bf16 runs bf16 weights without autocast
        bf16 = self.args.bf16 and not getattr(self, "is_deepspeed_enabled", False)
        with autocast(self.args.device, bf16):
            for stream, kind in self.method.reference(self.method_config).items():
                values = reference_values(self.live_reference, inputs[stream], kind)
                inputs[stream].update(values)

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs:  # every rank logs each step: the parts are averaged over all ranks
            logs.update(self._mean_components())
        super().log(logs, *args, **kwargs)

    def _mean_components(self) -> dict[str, float]:
        """The loss parts' means over the batches since the last log, on all ranks together.
        Every rank's method reports the same parts (they follow from the method and options)."""
        names = sorted(self._component_sums)
        local = [self._component_sums[name] for name in names] + [self._component_count]
        *totals, count = sum_over_ranks(local, self.args.device)
        self._component_sums.clear()
        self._component_count = 0
        if not count:
            return {}
        return {name: round(total / count, 6) for name, total in zip(names, totals, strict=True)}


class SupervisedDataset(torch.utils.data.Dataset):
    """Encoded QA examples for plain fine-tuning (``tif finetune``)."""

    def __init__(self, examples: Sequence[dict]):
        self.examples = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        return self.examples[index]

    def lengths(self) -> list[int]:
        return [len(e["input_ids"]) for e in self.examples]


class FinetuneTrainer(LengthGroupedTrainer):
    """Plain supervised fine-tuning with length-grouped batches (the model computes the loss)."""
