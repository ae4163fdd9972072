"""NPO (Zhang et al. 2024, arXiv 2404.05868), with an optional retain NLL term.

``targeted``: the NPO term on the UW tokens' log-probs only (sequence log-prob summed over UW
tokens, against the reference's), plus the Preservation Loss on the GW tokens.
"""

from __future__ import annotations

from .. import losses
from ..config.methods import NpoConfig
from .base import (
    SEQ_LOGP,
    TOKEN_LOGPS,
    Method,
    add_retain,
    forget_token_mask,
    reference_uw_seq_logp,
    stream_token_logps,
    with_preservation,
)


def compute_loss(model, batch: dict, config: NpoConfig):
    forget = batch["forget"]
    token_logps, answer = stream_token_logps(model, forget)  # (B, T-1)
    mask = forget_token_mask(forget, answer, config.targeted)
    policy_logps = losses.sequence_logprob(token_logps, mask)  # (B,)
    ref_logps = reference_uw_seq_logp(forget, mask) if config.targeted else forget["ref_seq_logp"]
    loss = losses.npo_loss(policy_logps, ref_logps, beta=config.beta)
    loss, logs = with_preservation(loss, {"npo": float(loss.detach())}, token_logps, forget, config)
    return add_retain(model, batch, config.forget_scale * loss, logs, config.lambda_retain)


METHOD = Method(
    name="npo",
    config_cls=NpoConfig,
    compute_loss=compute_loss,
    summary="Negative Preference Optimization on whole forget answers",
    reference=lambda config: {"forget": TOKEN_LOGPS if config.targeted else SEQ_LOGP},
)
