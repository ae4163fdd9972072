"""NPO (Zhang et al. 2024, arXiv 2404.05868), with an optional retain NLL term."""

from __future__ import annotations

from dataclasses import dataclass

from .. import losses
from .base import SEQ_LOGP, Method, add_retain, check_hyperparameters, stream_seq_logp


@dataclass
class NpoConfig:
    beta: float = 0.1  # open-unlearning default
    lambda_retain: float = 1.0  # weight of the retain NLL (used when a retain set is given)

    def __post_init__(self):
        check_hyperparameters(self)


def compute_loss(model, batch: dict, config: NpoConfig):
    forget = batch["forget"]
    policy_logps = stream_seq_logp(model, forget)  # (B,)
    loss = losses.npo_loss(policy_logps, forget["ref_seq_logp"], beta=config.beta)
    logs = {"npo": float(loss.detach())}
    return add_retain(model, batch, loss, logs, config.lambda_retain)


METHOD = Method(
    name="npo",
    config_cls=NpoConfig,
    compute_loss=compute_loss,
    summary="Negative Preference Optimization on whole forget answers",
    reference=lambda config: {"forget": SEQ_LOGP},
)
