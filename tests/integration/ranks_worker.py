"""Run under torchrun by test_multiprocess_saving.py: `tif unlearn`, recording what each rank did.

Usage: ranks_worker.py RECORD_DIR -- <tif unlearn arguments>
Each rank writes into RECORD_DIR, once the CLI has returned:
- ``parts-<rank>.json``: the loss parts (lpl, pl, retain_nll, ...) of each of its batches, with
  the optimizer step they belong to;
- ``saves-<rank>.json``: the folders it passed to ``save_pretrained``;
- ``markers-<rank>.json``: the checkpoint markers it wrote (they are written by a rename);
- ``weights-<rank>.safetensors``: its model's weights when the output is saved.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from safetensors.torch import save_file
from transformers import PreTrainedModel

from tif_unlearn.cli.app import main
from tif_unlearn.train import output
from tif_unlearn.train.checkpoints import MARKER
from tif_unlearn.train.trainer import UnlearnTrainer

RECORD: dict[str, list] = {"parts": [], "saves": [], "markers": []}


def record_parts(original):
    def compute_loss(self, model, inputs, *args, **kwargs):
        before = dict(self._component_sums)
        result = original(self, model, inputs, *args, **kwargs)
        parts = {k: v - before.get(k, 0.0) for k, v in self._component_sums.items()}
        RECORD["parts"].append({"step": self.state.global_step + 1, **parts})
        return result

    return compute_loss


def record_saves(original):
    def save_pretrained(self, folder, *args, **kwargs):
        RECORD["saves"].append(str(folder))
        return original(self, folder, *args, **kwargs)

    return save_pretrained


def record_markers(original):
    def replace(self, target):
        if Path(target).name == MARKER:
            RECORD["markers"].append(str(target))
        return original(self, target)

    return replace


def record_weights(original, path: Path):
    def save_output(trainer, model, *args, **kwargs):
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path))
        return original(trainer, model, *args, **kwargs)

    return save_output


if __name__ == "__main__":
    record_dir, separator, *cli_args = sys.argv[1:]
    assert separator == "--"
    rank, folder = os.environ["RANK"], Path(record_dir)
    UnlearnTrainer.compute_loss = record_parts(UnlearnTrainer.compute_loss)
    PreTrainedModel.save_pretrained = record_saves(PreTrainedModel.save_pretrained)
    Path.replace = record_markers(Path.replace)
    output.save_output = record_weights(output.save_output, folder / f"weights-{rank}.safetensors")
    code = main(cli_args)
    for name, values in RECORD.items():
        (folder / f"{name}-{rank}.json").write_text(json.dumps(values), encoding="utf-8")
    sys.exit(code)
