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
    ``folder/epoch<e>`` and probing it (``spec.probe``, cached per weights); the trajectory.

    Training checkpoints are written at every epoch's first step count (``tif unlearn
    --save-steps``), so a run cut short (a session ending) resumes from its last complete
    checkpoint to the same weights (``--resume``) instead of training again; the epochs probed
    before the cut come from the probe cache."""
    from tif_unlearn.config import UnlearnConfig
    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.models import load_tokenizer
    from tif_unlearn.train import run_unlearn

    target = work / "finetuned"
    tokenizer = load_tokenizer(str(target))
    fields = spec.unlearn_fields(p, name, files, target)
    per_step = fields["batch_size"] * fields.get("grad_accum", 1)
    ends = epoch_end_steps(len(load_records(files["forget"])), per_step, p.epochs)
    points: dict[int, dict] = {}

    def record(epoch: int, compute: Callable[[], dict]) -> None:
        numbers = cached_probe(work, name, folder / f"epoch{epoch}", p.recipe(), compute)
        points[epoch] = {"epoch": epoch, **numbers}
        rounded = {k: round(v, 4) for k, v in points[epoch].items()}
        log_step(f"{name} epoch {epoch}: " + json.dumps(rounded))

    def on_epoch(model, epoch):
        record(epoch, partial(spec.probe, p, model, tokenizer, files, reference))

    out = work / "unlearned" / name
    resume = resumable(out)
    log_step(f"unlearning {name}" + (" (resuming)" if resume else ""))
    config = UnlearnConfig(
        out=str(out), overwrite=True, resume=resume, save_steps=min(ends), **fields
    )
    run_unlearn(config, callbacks=[EpochProbe(ends, folder, tokenizer, on_epoch)])
    for epoch in sorted(set(ends.values()) - set(points)):  # probed before a resume
        saved = partial(_saved_model, folder / f"epoch{epoch}")
        record(epoch, lambda saved=saved: _probe(spec, p, saved(), tokenizer, files, reference))
    shutil.rmtree(out)  # the same weights as the last epoch's checkpoint
    return [points[epoch] for epoch in sorted(points)]


def resumable(out: Path) -> bool:
    """True when an earlier attempt at the run left a complete training checkpoint."""
    from tif_unlearn.train.checkpoints import checkpoint_dir, last_complete_checkpoint

    return last_complete_checkpoint(checkpoint_dir(out)) is not None


def _saved_model(folder: Path):
    """The epoch model saved in ``folder`` (loaded only when its probe was not cached)."""
    from tif_unlearn.models import load_model

    return load_model(str(folder), dtype="float32")[0]


def _probe(spec, p, model, tokenizer, files: dict, reference) -> dict:
    """``spec.probe`` as ``EpochProbe`` runs it: eval mode, no gradients."""
    import torch

    model.eval()
    with torch.no_grad():
        return spec.probe(p, model, tokenizer, files, reference)


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
