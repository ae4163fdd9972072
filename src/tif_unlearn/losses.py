"""Unlearning losses as pure functions of tensors (no model calls inside).

Shapes: B = batch size, T = sequence length, V = vocabulary size. Label tensors use
``IGNORE_INDEX`` (-100) for positions that carry no target (prompt, padding); the token-level
helpers (next-token shift, per-token logits and log-probabilities) are in ``tokens.py``.

Sources:
- TIF / TPO: "Not All Tokens Are Meant to Be Forgotten", arXiv 2506.03142
  (Logit Preference Loss, Preservation Loss).
- NPO: Zhang et al. 2024, arXiv 2404.05868, eq. 3.
- SimNPO: Fan et al. 2024, arXiv 2410.07163.
- DPO / IdkDPO: Rafailov et al. 2023, arXiv 2305.18290, eq. 7, in the form used by
  the open-unlearning framework (``trainer/utils.py::compute_dpo_loss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from . import tokens

__all__ = [
    "dpo_loss",
    "logit_preference_loss",
    "nll_loss",
    "npo_loss",
    "per_token_nll",
    "preservation_loss",
    "sequence_logprob",
    "simnpo_loss",
]


def _check_beta(beta: float) -> None:
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")


def _masked_mean_per_sample(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Mean of ``values`` over each row's masked positions, and which rows have any."""
    mask = mask.bool()  # (B, T)
    counts = mask.sum(dim=-1)  # (B,)
    sums = torch.where(mask, values, torch.zeros_like(values)).sum(dim=-1)  # (B,)
    return sums / counts.clamp(min=1), counts > 0  # (B,), (B,)


# --------------------------------------------------------------------------- token and sequence level


def per_token_nll(logits: Tensor, labels: Tensor) -> Tensor:
    """Negative log-likelihood −log p(y_t) per token; 0.0 at ignored positions."""
    return -tokens.token_logprobs(logits, labels)  # (B, T)


def sequence_logprob(token_logps: Tensor, mask: Tensor) -> Tensor:
    """log π(y|x) = Σ_t log p(y_t) over the masked (answer) tokens of each sample."""
    masked = torch.where(mask.bool(), token_logps, torch.zeros_like(token_logps))  # (B, T)
    return masked.sum(dim=-1)  # (B,)


def nll_loss(token_logps: Tensor, mask: Tensor) -> Tensor:
    """Mean NLL over all masked tokens of the batch (token mean, as HF's causal-LM loss).

    An empty mask gives 0.0, still connected to ``token_logps``' graph.
    """
    mask = mask.bool()  # (B, T)
    total = torch.where(mask, token_logps, torch.zeros_like(token_logps)).sum()  # ()
    return -total / mask.sum().clamp(min=1)  # ()


# --------------------------------------------------------------------------- TIF (TPO)


def logit_preference_loss(
    policy_logits: Tensor,
    ref_logits: Tensor,
    uw_mask: Tensor,
    beta: float,
    per_sample: bool = False,
) -> Tensor:
    """TIF Logit Preference Loss (arXiv 2506.03142): L_LPL = −(2/β)·log σ(β·Δ).

    Default (as the released code): Δ = mean_batch[mean_UW z_ref] − mean_batch[mean_UW z_θ],
    one sigmoid on the batch value. ``per_sample=True``: Δ_i per sample, loss averaged
    over samples. Samples with no UW token are left out; if none has one, returns a zero
    still connected to ``policy_logits``' graph. ``ref_logits`` is treated as a constant.
    """
    _check_beta(beta)
    # policy_logits, ref_logits, uw_mask: (B, T)
    policy_mean, has_uw = _masked_mean_per_sample(policy_logits, uw_mask)  # (B,), (B,)
    ref_mean, _ = _masked_mean_per_sample(ref_logits.detach(), uw_mask)  # (B,)
    if not bool(has_uw.any()):
        return policy_logits.sum() * 0.0
    policy_mean, ref_mean = policy_mean[has_uw], ref_mean[has_uw]  # (N,), (N,)
    if per_sample:
        delta = ref_mean - policy_mean  # (N,)
        return (-(2.0 / beta) * F.logsigmoid(beta * delta)).mean()
    delta = ref_mean.mean() - policy_mean.mean()  # ()
    return -(2.0 / beta) * F.logsigmoid(beta * delta)


def preservation_loss(per_token_nll: Tensor, gw_mask: Tensor) -> Tensor:
    """TIF Preservation Loss (arXiv 2506.03142): GW-token NLL summed per sample, batch mean.

    The mean runs over all B samples (a sample without GW tokens contributes 0).
    """
    gw = gw_mask.bool()  # (B, T)
    per_sample = torch.where(gw, per_token_nll, torch.zeros_like(per_token_nll)).sum(-1)  # (B,)
    return per_sample.mean()  # ()


# --------------------------------------------------------------------------- baselines


def npo_loss(policy_logps: Tensor, ref_logps: Tensor, *, beta: float) -> Tensor:
    """NPO (Zhang et al. 2024, arXiv 2404.05868, eq. 3): −(2/β)·mean log σ(−β·(log π − log π_ref)).

    Equal to the paper's (2/β)·E[log(1 + (π/π_ref)^β)]; open-unlearning computes the same
    thing as its DPO loss with no "win" term. Inputs are sequence log-probs (B,).
    """
    _check_beta(beta)
    log_ratio = policy_logps - ref_logps  # (B,)
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).mean()


def simnpo_loss(
    policy_logps: Tensor, lengths: Tensor, *, beta: float, gamma: float = 0.0
) -> Tensor:
    """SimNPO (Fan et al. 2024, arXiv 2410.07163): −(2/β)·mean log σ(−(β/|y|)·log π(y|x) − γ).

    Reference-free and length-normalised; ``lengths`` = answer tokens per sample (B,).
    Note: open-unlearning's ``SimNPO`` uses log σ(β·(NLL/|y| − δ)), i.e. its margin is
    multiplied by β: its ``delta`` equals γ/β here (identical when γ = δ = 0).
    """
    _check_beta(beta)
    lengths = lengths.to(policy_logps.dtype).clamp(min=1)  # (B,)
    logits = -(beta / lengths) * policy_logps - gamma  # (B,)
    return -(2.0 / beta) * F.logsigmoid(logits).mean()


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float,
) -> Tensor:
    """DPO / IdkDPO as in open-unlearning: −(2/β)·mean log σ(β·((π_c − r_c) − (π_r − r_r))).

    The DPO paper (arXiv 2305.18290, eq. 7) has no 2/β factor; open-unlearning adds it,
    which only rescales the loss (the gradient is 2/β times the paper's). For IdkDPO the
    "chosen" answer is the refusal and the "rejected" one the true answer. Inputs (B,).
    """
    _check_beta(beta)
    chosen_ratio = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_ratio = policy_rejected_logps - ref_rejected_logps  # (B,)
    return -(2.0 / beta) * F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()
