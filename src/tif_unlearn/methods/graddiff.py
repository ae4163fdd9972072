"""GradDiff: gradient ascent on forget + gradient descent on retain (``targeted``: see GA)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Method, add_retain, check_hyperparameters
from .ga import forget_ascent


@dataclass
class GradDiffConfig:
    lambda_retain: float = 1.0  # weight of the retain NLL
    forget_scale: float = 1.0  # weight of the forget term
    targeted: bool = False  # forget term on UW tokens only, Preservation Loss on GW tokens
    lambda_pl: float = 1.0  # weight of the Preservation Loss (targeted only)

    def __post_init__(self):
        check_hyperparameters(self)


def compute_loss(model, batch: dict, config: GradDiffConfig):
    loss, logs = forget_ascent(model, batch, config)
    return add_retain(model, batch, loss, logs, config.lambda_retain)


METHOD = Method(
    name="graddiff",
    config_cls=GradDiffConfig,
    compute_loss=compute_loss,
    summary="Gradient difference: ascent on forget, descent on retain",
    retain="required",
)
