"""Token-level helpers: the label that marks "no target", the next-token shift, and the
per-token values (logit, centred logit, log-probability) of each label token.

Shapes: B = batch size, T = sequence length, V = vocabulary size. Label tensors use
``IGNORE_INDEX`` (-100) for positions that carry no target (prompt, padding).
"""

from __future__ import annotations

import torch
from torch import Tensor

IGNORE_INDEX = -100

__all__ = [
    "IGNORE_INDEX",
    "shift_for_next_token",
    "token_centered_logits",
    "token_logits",
    "token_logprobs",
]


def shift_for_next_token(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Align causal-LM logits with the next token (position t predicts label t+1).

    Same shift as Hugging Face's causal-LM loss.
    """
    # logits (B, T, V) -> (B, T-1, V); labels (B, T) -> (B, T-1)
    return logits[:, :-1, :], labels[:, 1:]


def token_logits(logits: Tensor, labels: Tensor) -> Tensor:
    """Raw (pre-softmax) logit z(y_t) of each label token (TIF, arXiv 2506.03142, z_θ(y_t)).

    Inputs are already shifted. Ignored positions (label -100) give 0.0.
    Returned in float32.
    """
    ignored = labels == IGNORE_INDEX  # (B, T)
    safe_labels = labels.masked_fill(ignored, 0)  # (B, T)
    picked = logits.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return picked.float().masked_fill(ignored, 0.0)  # (B, T)


def token_centered_logits(logits: Tensor, labels: Tensor) -> Tensor:
    """Centred logit z(y_t) − mean_v z(v) of each label token (a TIF LPL variant).

    Unlike the raw logit it is shift-invariant: lowering every logit of a position together
    leaves it (and p(y_t)) unchanged. Inputs already shifted; ignored positions give 0.0.
    """
    picked = token_logits(logits, labels)  # (B, T) float32, 0 at ignored
    means = torch.stack([row.float().mean(dim=-1) for row in logits])  # (B, T)
    ignored = labels == IGNORE_INDEX  # (B, T)
    return (picked - means).masked_fill(ignored, 0.0)  # (B, T)


def token_logprobs(logits: Tensor, labels: Tensor) -> Tensor:
    """log p(y_t) = z(y_t) − logsumexp_v z(v), gathered without a full log_softmax.

    Computed in float32, one sample at a time for the logsumexp, so that no extra
    (B, T, V) float32 tensor is created for half-precision logits. Inputs already
    shifted; ignored positions (label -100) give 0.0.
    """
    picked = token_logits(logits, labels)  # (B, T) float32, 0 at ignored
    lse = torch.stack([torch.logsumexp(row.float(), dim=-1) for row in logits])  # (B, T)
    ignored = labels == IGNORE_INDEX  # (B, T)
    return (picked - lse).masked_fill(ignored, 0.0)  # (B, T)
