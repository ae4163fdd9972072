"""SimNPO (Fan et al. 2024, arXiv 2410.07163): reference-free, length-normalised NPO."""

from __future__ import annotations

from dataclasses import dataclass

from .. import losses
from .base import Method, add_retain, check_hyperparameters, stream_token_logps


@dataclass
class SimNpoConfig:
    beta: float = 4.5  # open-unlearning default
    gamma: float = 0.0  # margin (paper form; open-unlearning's delta = gamma / beta)
    lambda_retain: float = 1.0

    def __post_init__(self):
        check_hyperparameters(self)


def compute_loss(model, batch: dict, config: SimNpoConfig):
    token_logps, mask = stream_token_logps(model, batch["forget"])  # (B, T-1)
    policy_logps = losses.sequence_logprob(token_logps, mask)  # (B,)
    loss = losses.simnpo_loss(policy_logps, mask.sum(-1), beta=config.beta, gamma=config.gamma)
    logs = {"simnpo": float(loss.detach())}
    return add_retain(model, batch, loss, logs, config.lambda_retain)


METHOD = Method(
    name="simnpo",
    config_cls=SimNpoConfig,
    compute_loss=compute_loss,
    summary="SimNPO: reference-free, length-normalised NPO",
)
