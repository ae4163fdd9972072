"""GA: gradient ascent on the forget answers (maximize their NLL)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import losses
from .base import Method, stream_token_logps


@dataclass
class GaConfig:
    pass


def compute_loss(model, batch: dict, config: GaConfig):
    token_logps, mask = stream_token_logps(model, batch["forget"])
    forget_nll = losses.nll_loss(token_logps, mask)
    return -forget_nll, {"forget_nll": float(forget_nll.detach())}


METHOD = Method(
    name="ga",
    config_cls=GaConfig,
    compute_loss=compute_loss,
    summary="Gradient ascent on all forget answer tokens",
    retain="unused",
)
