"""TIF: Targeted Preference Optimization (arXiv 2506.03142).

L = L_LPL(UW tokens) + λ_PL · L_PL(GW tokens) + λ_R · NLL(retain).
The reference value needed is one scalar per UW token (z_ref(y_t)), cached before training.
"""

from __future__ import annotations

from .. import losses, tokens
from ..config.methods import TifConfig
from .base import (
    TOKEN_CENTERED,
    TOKEN_LOGITS,
    TOKEN_LOGPS,
    Method,
    add_retain,
    stream_logits,
)

# The token value the LPL compares with the reference (``config.methods.LPL_SPACES``): the raw
# logit z(y_t) (paper), its log-prob, or the centred logit z(y_t) − mean_v z(v)
# (shift-invariant, unlike the raw logit).
LPL_SPACES = {
    "logit": (tokens.token_logits, TOKEN_LOGITS),
    "logprob": (tokens.token_logprobs, TOKEN_LOGPS),
    "centered": (tokens.token_centered_logits, TOKEN_CENTERED),
}


def compute_loss(model, batch: dict, config: TifConfig):
    forget = batch["forget"]
    logits, labels = stream_logits(model, forget)  # (B, T-1, V), (B, T-1)
    policy = LPL_SPACES[config.lpl_space][0](logits, labels)  # (B, T-1)
    ref = forget["ref_token_values"][:, 1:]  # (B, T-1)
    lpl = losses.logit_preference_loss(
        policy, ref, forget["uw_mask"][:, 1:], config.beta, per_sample=config.per_sample
    )
    nll = losses.per_token_nll(logits, labels)  # (B, T-1)
    pl = losses.preservation_loss(nll, forget["gw_mask"][:, 1:])
    loss = config.forget_scale * (lpl + config.lambda_pl * pl)
    logs = {"lpl": float(lpl.detach()), "pl": float(pl.detach())}
    return add_retain(model, batch, loss, logs, config.lambda_retain)


def _reference(config: TifConfig) -> dict[str, str]:
    return {"forget": LPL_SPACES[config.lpl_space][1]}


METHOD = Method(
    name="tif",
    config_cls=TifConfig,
    compute_loss=compute_loss,
    summary="Targeted Information Forgetting: push down UW-token logits, keep GW tokens",
    reference=_reference,
    needs_spans=lambda config: True,
)
