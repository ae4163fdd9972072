"""SimNPO (Fan et al. 2024, arXiv 2410.07163): reference-free, length-normalised NPO.

Defaults are open-unlearning's (``configs/trainer/SimNPO.yaml``): β 4.5, δ = γ = 0, and the
forget term weighted 0.125 against the retain NLL's 1.0 (its ``gamma`` and ``alpha``).
``targeted``: the SimNPO term on the UW tokens only (normalised by their count), plus the
Preservation Loss on the GW tokens.
"""

from __future__ import annotations

from .. import losses
from ..config.methods import SimNpoConfig
from .base import (
    Method,
    add_retain,
    forget_token_mask,
    stream_token_logps,
    with_preservation,
)


def compute_loss(model, batch: dict, config: SimNpoConfig):
    forget = batch["forget"]
    token_logps, answer = stream_token_logps(model, forget)  # (B, T-1)
    mask = forget_token_mask(forget, answer, config.targeted)
    policy_logps = losses.sequence_logprob(token_logps, mask)  # (B,)
    loss = losses.simnpo_loss(policy_logps, mask.sum(-1), beta=config.beta, gamma=config.gamma)
    loss, logs = with_preservation(
        loss, {"simnpo": float(loss.detach())}, token_logps, forget, config
    )
    return add_retain(model, batch, config.forget_scale * loss, logs, config.lambda_retain)


METHOD = Method(
    name="simnpo",
    config_cls=SimNpoConfig,
    compute_loss=compute_loss,
    summary="SimNPO: reference-free, length-normalised NPO",
)
