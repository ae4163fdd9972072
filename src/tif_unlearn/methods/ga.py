"""GA: gradient ascent on the forget answers (maximize their NLL).

``targeted``: ascent on the UW tokens only, with the Preservation Loss on the GW tokens (the
TIF paper's split applied to GA, as Selective Unlearning, arXiv 2506.00876, does).
"""

from __future__ import annotations

from .. import losses
from ..config.methods import GaConfig
from .base import (
    Method,
    forget_token_mask,
    stream_token_logps,
    with_preservation,
)


def forget_ascent(model, batch: dict, config) -> tuple:
    """−NLL of the forget tokens (UW only when targeted), plus the Preservation Loss when
    targeted, times ``forget_scale``; shared by GA and GradDiff."""
    forget = batch["forget"]
    token_logps, answer = stream_token_logps(model, forget)
    forget_nll = losses.nll_loss(token_logps, forget_token_mask(forget, answer, config.targeted))
    loss, logs = with_preservation(
        -forget_nll, {"forget_nll": float(forget_nll.detach())}, token_logps, forget, config
    )
    return config.forget_scale * loss, logs


def compute_loss(model, batch: dict, config: GaConfig):
    return forget_ascent(model, batch, config)


METHOD = Method(
    name="ga",
    config_cls=GaConfig,
    compute_loss=compute_loss,
    summary="Gradient ascent on all forget answer tokens",
    retain="unused",
)
