"""IdkDPO: DPO preferring a refusal ("I don't know") over the true forget answer."""

from __future__ import annotations

from .. import losses
from ..config.methods import IdkDpoConfig
from .base import SEQ_LOGP, Method, add_retain, stream_seq_logp


def compute_loss(model, batch: dict, config: IdkDpoConfig):
    forget, idk = batch["forget"], batch["idk"]
    loss = losses.dpo_loss(
        stream_seq_logp(model, idk),  # chosen: the refusal
        stream_seq_logp(model, forget),  # rejected: the true answer
        idk["ref_seq_logp"],
        forget["ref_seq_logp"],
        beta=config.beta,
    )
    logs = {"dpo": float(loss.detach())}
    return add_retain(model, batch, config.forget_scale * loss, logs, config.lambda_retain)


METHOD = Method(
    name="idkdpo",
    config_cls=IdkDpoConfig,
    compute_loss=compute_loss,
    summary="DPO towards a refusal instead of the forget answer",
    uses_idk=True,
    reference=lambda config: {"forget": SEQ_LOGP, "idk": SEQ_LOGP},
)
