"""GradDiff: gradient ascent on forget + gradient descent on retain (``targeted``: see GA)."""

from __future__ import annotations

from ..config.methods import GradDiffConfig
from .base import Method, add_retain
from .ga import forget_ascent


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
