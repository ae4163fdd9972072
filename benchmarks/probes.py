"""A run seen at the end of every epoch (a trajectory, not a single point): the step at which
each epoch ends, a training callback that saves and probes the model there, and the UW/GW
token probabilities every probe reports."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

from cache import cached_probe
from common import log_step
from transformers import TrainerCallback


def epoch_end_steps(n_examples: int, per_step: int, epochs: int) -> dict[int, int]:
    """Optimizer step after which each epoch ends, when epochs flow into each other and only
    full windows step (``step_count="floor"``): epoch e ends after floor(e·N / per_step) steps.
    Epochs that end on the same step keep the later epoch."""
    ends = {}
    for epoch in range(1, epochs + 1):
        step = math.floor(epoch * n_examples / per_step)
        if step >= 1:
            ends[step] = epoch
    return ends


class EpochProbe(TrainerCallback):
    """At the end of every epoch: save the model into ``folder/epoch<e>`` and call
    ``probe(model, epoch)`` (cheap metrics), with the model in eval mode and no gradients."""

    def __init__(self, ends: dict[int, int], folder: Path, tokenizer, probe: Callable):
        self.ends, self.folder, self.tokenizer, self.probe = ends, folder, tokenizer, probe

    def on_step_end(self, args, state, control, model=None, **kwargs):
        epoch = self.ends.get(state.global_step)
        if epoch is None:
            return
        import torch

        target = self.folder / f"epoch{epoch}"
        model.save_pretrained(target, safe_serialization=True)
        self.tokenizer.save_pretrained(target)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            self.probe(model, epoch)
        model.train(was_training)


def train_with_probes(spec, p, name: str, files: dict, work: Path, folder: Path, reference):
    """Unlearn run ``name`` from ``work/finetuned``, saving every epoch's model in
    ``folder/epoch<e>`` and probing it (``spec.probe``, cached per weights); the trajectory."""
    from tif_unlearn.config import UnlearnConfig
    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.models import load_tokenizer
    from tif_unlearn.train import run_unlearn

    target = work / "finetuned"
    tokenizer = load_tokenizer(str(target))
    fields = spec.unlearn_fields(p, name, files, target)
    per_step = fields["batch_size"] * fields.get("grad_accum", 1)
    ends = epoch_end_steps(len(load_records(files["forget"])), per_step, p.epochs)
    trajectory = []

    def on_epoch(model, epoch):
        compute = partial(spec.probe, p, model, tokenizer, files, reference)
        numbers = cached_probe(work, name, folder / f"epoch{epoch}", p.recipe(), compute)
        point = {"epoch": epoch, **numbers}
        trajectory.append(point)
        log_step(f"{name} epoch {epoch}: " + json.dumps({k: round(v, 4) for k, v in point.items()}))

    log_step(f"unlearning {name}")
    out = work / "unlearned" / name
    config = UnlearnConfig(out=str(out), overwrite=True, **fields)
    run_unlearn(config, callbacks=[EpochProbe(ends, folder, tokenizer, on_epoch)])
    shutil.rmtree(out)  # the same weights as the last epoch's checkpoint
    return trajectory


def token_group_probs(model, tokenizer, annotated: Path, max_items: int | None = None) -> dict:
    """Mean probability of the UW tokens and of the GW tokens of annotated records, pooled
    over all their tokens (the trajectory diagnostics: does a method lower the unwanted words,
    or everything?)."""
    import numpy as np

    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.evaluate.qa_scoring import target_masks
    from tif_unlearn.evaluate.scoring import score_records

    records = load_records(annotated)[:max_items]
    scored = score_records(model, tokenizer, records, desc="UW/GW probabilities")
    uw, gw = [], []
    for record, answer in zip(records, scored, strict=True):
        uw_flags, _ = target_masks(tokenizer, record, max_length=512)
        for is_uw, logp in zip(uw_flags, answer.token_logps, strict=True):
            (uw if is_uw else gw).append(float(np.exp(logp)))
    return {"uw_prob": float(np.mean(uw)), "gw_prob": float(np.mean(gw))}
