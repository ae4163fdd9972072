"""What every method shares: the Method record, forward passes over a stream, reference values.

A method is a config dataclass plus a thin ``compute_loss(model, batch, config)`` hook that runs
forward passes and calls the pure functions of ``tif_unlearn.losses``. Reference values (the
frozen starting model's outputs) arrive inside the batch, either cached before training or
filled in per step from a live reference model; the hook never sees the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .. import losses, tokens

# Reference quantities a method can ask for, per stream.
TOKEN_LOGITS = "token_logits"  # raw logit of each label token -> stream["ref_token_values"]
TOKEN_LOGPS = "token_logps"  # log-prob of each label token  -> stream["ref_token_values"]
TOKEN_CENTERED = "token_centered"  # logit minus the mean logit -> stream["ref_token_values"]
SEQ_LOGP = "seq_logp"  # summed answer log-prob          -> stream["ref_seq_logp"]


@dataclass(frozen=True)
class Method:
    name: str
    config_cls: type
    compute_loss: Callable  # (model, batch, config) -> (loss, {name: float})
    summary: str
    retain: str = "optional"  # "required" | "optional" | "unused"
    uses_idk: bool = False
    reference: Callable[[object], dict[str, str]] = field(default=lambda config: {})
    # Whether the forget records need UW/GW spans (TIF always; others with ``targeted``).
    needs_spans: Callable[[object], bool] = field(
        default=lambda config: getattr(config, "targeted", False)
    )


def stream_logits(model, stream: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Forward one stream; return next-token-aligned ``(logits, labels)``: (B, T-1, V), (B, T-1)."""
    out = model(input_ids=stream["input_ids"], attention_mask=stream["attention_mask"])
    return tokens.shift_for_next_token(out.logits, stream["labels"])


def answer_mask(labels: Tensor) -> Tensor:
    return labels != tokens.IGNORE_INDEX  # (B, T-1)


def stream_token_logps(model, stream: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Per-token log-probs (B, T-1) of the labels and the answer mask."""
    logits, labels = stream_logits(model, stream)
    return tokens.token_logprobs(logits, labels), answer_mask(labels)


def stream_seq_logp(model, stream: dict[str, Tensor]) -> Tensor:
    token_logps, mask = stream_token_logps(model, stream)
    return losses.sequence_logprob(token_logps, mask)  # (B,)


def forget_token_mask(forget: dict[str, Tensor], answer: Tensor, targeted: bool) -> Tensor:
    """The tokens a forget term covers: the UW tokens when ``targeted``, else the whole answer."""
    return forget["uw_mask"][:, 1:] if targeted else answer  # (B, T-1)


def reference_uw_seq_logp(forget: dict[str, Tensor], uw: Tensor) -> Tensor:
    """log π_ref summed over the UW tokens, from the cached per-token reference log-probs."""
    return losses.sequence_logprob(forget["ref_token_values"][:, 1:], uw)  # (B,)


def with_preservation(loss: Tensor, logs: dict, token_logps: Tensor, forget: dict, config):
    """Targeted variants (arXiv 2506.03142's thesis applied to any forget term): add
    λ_PL · Preservation Loss on the GW tokens. Untargeted configs pass through unchanged."""
    if not getattr(config, "targeted", False):
        return loss, logs
    pl = losses.preservation_loss(-token_logps, forget["gw_mask"][:, 1:])
    return loss + config.lambda_pl * pl, {**logs, "pl": float(pl.detach())}


def retain_nll(model, batch: dict, weight: float) -> tuple[Tensor | None, dict[str, float]]:
    """λ_R · NLL on the retain stream, or ``(None, {})`` when there is no retain stream."""
    if "retain" not in batch or weight == 0:
        return None, {}
    token_logps, mask = stream_token_logps(model, batch["retain"])
    nll = losses.nll_loss(token_logps, mask)
    return weight * nll, {"retain_nll": float(nll.detach())}


def add_retain(model, batch: dict, loss: Tensor, logs: dict, weight: float):
    term, retain_logs = retain_nll(model, batch, weight)
    if term is not None:
        loss = loss + term
    return loss, {**logs, **retain_logs}


@torch.no_grad()
def reference_values(model, stream: dict[str, Tensor], kind: str) -> dict[str, Tensor]:
    """Compute the reference quantity ``kind`` for a padded stream (no gradients)."""
    logits, labels = stream_logits(model, stream)
    if kind == SEQ_LOGP:
        logps = tokens.token_logprobs(logits, labels)
        return {"ref_seq_logp": losses.sequence_logprob(logps, answer_mask(labels))}
    per_token = {
        TOKEN_LOGITS: tokens.token_logits,
        TOKEN_LOGPS: tokens.token_logprobs,
        TOKEN_CENTERED: tokens.token_centered_logits,
    }
    if kind not in per_token:
        raise ValueError(f"unknown reference kind {kind!r}")
    values = per_token[kind](logits, labels)
    # Aligned with input positions: position t holds the value for token t (t >= 1).
    return {"ref_token_values": torch.nn.functional.pad(values, (1, 0))}  # (B, T)
