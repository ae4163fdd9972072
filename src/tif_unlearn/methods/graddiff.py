"""GradDiff: gradient ascent on forget + gradient descent on retain."""

from __future__ import annotations

from dataclasses import dataclass

from .. import losses
from .base import Method, add_retain, check_hyperparameters, stream_token_logps


@dataclass
class GradDiffConfig:
    lambda_retain: float = 1.0  # weight of the retain NLL

    def __post_init__(self):
        check_hyperparameters(self)


def compute_loss(model, batch: dict, config: GradDiffConfig):
    token_logps, mask = stream_token_logps(model, batch["forget"])
    forget_nll = losses.nll_loss(token_logps, mask)
    logs = {"forget_nll": float(forget_nll.detach())}
    return add_retain(model, batch, -forget_nll, logs, config.lambda_retain)


METHOD = Method(
    name="graddiff",
    config_cls=GradDiffConfig,
    compute_loss=compute_loss,
    summary="Gradient difference: ascent on forget, descent on retain",
    retain="required",
)
