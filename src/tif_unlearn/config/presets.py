"""Presets: the TIF paper's recipes (DESIGN.md section 1) as defaults for ``tif unlearn``.

Order, lowest to highest: the option's built-in default < the preset < the YAML file
(``--config``) < the command line. A preset's method hyperparameters (β, λ, forget scale) are
TIF's and apply to ``--method tif`` only: ``--preset muse --method npo`` keeps the preset's
training schedule but NPO's own β and forget weight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

from ..errors import TifError
from .methods import METHOD_CONFIGS
from .schema import TrainConfig

log = logging.getLogger("tif_unlearn")


@dataclass(frozen=True)
class Preset:
    """A paper recipe: its method, that method's hyperparameters (applied to that method only)
    and the training schedule (applied to any method)."""

    method: str
    hyperparameters: dict[str, object]
    schedule: dict[str, object]

    def __post_init__(self):
        """Keys come from the method's config class and ``TrainConfig``: a typo fails here."""
        METHOD_CONFIGS[self.method](**self.hyperparameters)
        unknown = set(self.schedule) - {option.name for option in fields(TrainConfig)}
        if unknown:
            raise ValueError(f"preset schedule: unknown options {sorted(unknown)}")


PRESETS: dict[str, Preset] = {
    # MUSE: β 0.2, L = 0.1·(L_LPL + λ_PL·L_PL) + NLL_retain, constant lr 1e-5, trained on
    # 2048-token windows (max_length leaves room for the tokenizer's special tokens). Shorter
    # windows shrink the Preservation Loss (a per-sample sum) relative to the LPL.
    "muse": Preset(
        method="tif",
        hyperparameters={"beta": 0.2, "forget_scale": 0.1, "lambda_pl": 1.0, "lambda_retain": 1.0},
        schedule={
            "lr": 1e-5,
            "scheduler": "constant",
            "warmup_epochs": 0.0,
            "window_length": 2048,
            "max_length": 2056,
            "step_count": "floor",
        },
    ),
    # TOFU: L = L_LPL + λ_PL·L_PL + λ_R·NLL_retain (weights 1), β 0.32 (Llama-2-7B forget01/05;
    # the paper uses 0.23 for forget10), lr 1e-5, 10 epochs, effective batch 32 (4 x 8),
    # AdamW with weight decay 0.01, linear schedule with one warm-up epoch; the paper's step
    # count: floor(epochs · N / 32) full batches, epochs running into each other (forget01:
    # 12 steps, not 2 per epoch with every second one a partial batch of 8).
    "tofu": Preset(
        method="tif",
        hyperparameters={"beta": 0.32, "forget_scale": 1.0, "lambda_pl": 1.0, "lambda_retain": 1.0},
        schedule={
            "lr": 1e-5,
            "epochs": 10.0,
            "batch_size": 4,
            "grad_accum": 8,
            "weight_decay": 0.01,
            "scheduler": "linear",
            "warmup_epochs": 1.0,
            "step_count": "floor",
        },
    ),
}


def preset_values(name: str, method: str | None) -> dict[str, object]:
    """The preset's option values for ``method`` (default: the preset's own method)."""
    if name not in PRESETS:
        raise TifError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    values = {"method": preset.method, **preset.schedule}
    if method is None or method == preset.method:
        return {**values, **preset.hyperparameters}
    skipped = ", ".join(preset.hyperparameters)
    log.info("preset %s: %s are %s's, not used by method %s", name, skipped, preset.method, method)
    return values


def apply_preset(values: dict[str, object]) -> dict[str, object]:
    """``values`` (from YAML and the command line) on top of the preset they name, if any."""
    name = values.get("preset")
    if name is None:
        return values
    return {**preset_values(str(name), values.get("method")), **values}
