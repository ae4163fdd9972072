"""Targeted forget terms (UW tokens only + Preservation Loss on GW), forget weights and the
centred-logit LPL, on hand-computed numbers.

One sample, vocabulary of 2, three positions: a prompt token and two answer tokens. The
shifted logits give p(first answer token = 0) = 3/4 (logits [ln 3, 0]) and p(second = 1) = 1/2
(logits [0, 0]). The first answer token is UW, the second GW.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from tif_unlearn import tokens
from tif_unlearn.methods import METHODS


class FixedLogits(torch.nn.Module):
    """A stand-in language model whose logits are a trainable tensor (B, T, V)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits, dtype=torch.float32))

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.logits)


def _model():
    return FixedLogits([[[math.log(3), 0.0], [0.0, 0.0], [0.0, 0.0]]])


def _batch():
    forget = {
        "input_ids": torch.tensor([[1, 0, 1]]),
        "attention_mask": torch.ones(1, 3, dtype=torch.long),
        "labels": torch.tensor([[-100, 0, 1]]),
        "uw_mask": torch.tensor([[False, True, False]]),
        "gw_mask": torch.tensor([[False, False, True]]),
        # reference log-probs aligned with input positions: ln 1/2 for both answer tokens
        "ref_token_values": torch.tensor([[0.0, math.log(0.5), math.log(0.5)]]),
        "ref_seq_logp": torch.tensor([2 * math.log(0.5)]),
    }
    return {"forget": forget}


def _loss(method: str, **options) -> float:
    config = METHODS[method].config_cls(**options)
    loss, _ = METHODS[method].compute_loss(_model(), _batch(), config)
    return float(loss.detach())


PL = math.log(2)  # GW NLL: −ln(1/2)


@pytest.mark.parametrize(
    "method, options, expected",
    [
        # −NLL(UW) + PL = −ln(4/3) + ln 2 = ln(3/2)
        ("ga", {"targeted": True}, math.log(1.5)),
        ("graddiff", {"targeted": True, "lambda_pl": 2.0}, -math.log(4 / 3) + 2 * PL),
        # log ratio on UW = ln(3/4) − ln(1/2) = ln 1.5; β = 1: −2 ln σ(−ln 1.5) = −2 ln 0.4
        ("npo", {"targeted": True, "beta": 1.0}, -2 * math.log(0.4) + PL),
        # SimNPO on UW (length 1), β = 1: −2 ln σ(ln 4/3) = −2 ln(4/7); times the forget weight
        ("simnpo", {"targeted": True, "beta": 1.0}, 0.125 * (-2 * math.log(4 / 7) + PL)),
        ("simnpo", {"targeted": True, "beta": 1.0, "forget_scale": 1.0}, -2 * math.log(4 / 7) + PL),
    ],
)
def test_targeted_forget_terms(method, options, expected):
    assert _loss(method, **options) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "method, options, expected",
    [
        # whole answer: NLL = (ln 4/3 + ln 2) / 2 per token
        ("ga", {}, -(math.log(4 / 3) + PL) / 2),
        ("ga", {"forget_scale": 0.5}, -0.5 * (math.log(4 / 3) + PL) / 2),
        # log ratio = ln(3/8) − ln(1/4) = ln 1.5 on the whole answer too
        ("npo", {"beta": 1.0, "forget_scale": 3.0}, 3 * -2 * math.log(0.4)),
        # SimNPO, β = 1, |y| = 2: −2 ln σ(−ln(3/8) / 2) = −2 ln(1 / (1 + sqrt(3/8)))
        ("simnpo", {"beta": 1.0}, 0.125 * -2 * math.log(1 / (1 + math.sqrt(3 / 8)))),
    ],
)
def test_untargeted_forget_terms_and_their_weights(method, options, expected):
    assert _loss(method, **options) == pytest.approx(expected, rel=1e-5)


def test_simnpo_default_weighs_the_forget_term_as_open_unlearning():
    config = METHODS["simnpo"].config_cls()
    assert (config.beta, config.gamma, config.forget_scale, config.lambda_retain) == (
        4.5,
        0.0,
        0.125,
        1.0,
    )


@pytest.mark.parametrize("method", ["ga", "npo", "simnpo"])
def test_a_targeted_step_lowers_the_uw_token_and_raises_the_gw_token(method):
    model = _model()
    config = METHODS[method].config_cls(targeted=True)
    loss, logs = METHODS[method].compute_loss(model, _batch(), config)
    assert "pl" in logs
    loss.backward()
    with torch.no_grad():
        probs_before = torch.softmax(model.logits, -1)
        model.logits -= 0.1 * model.logits.grad
        probs_after = torch.softmax(model.logits, -1)
    assert probs_after[0, 0, 0] < probs_before[0, 0, 0]  # UW token 0 at position 0: down
    assert probs_after[0, 1, 1] > probs_before[0, 1, 1]  # GW token 1 at position 1: up


def test_centered_logits_subtract_the_positions_mean_logit():
    logits = torch.tensor([[[math.log(3), 0.0], [2.0, 4.0]]])
    labels = torch.tensor([[0, -100]])
    centered = tokens.token_centered_logits(logits, labels)
    # ln 3 − (ln 3 + 0) / 2 = ln 3 / 2; the ignored position gives 0
    assert centered[0].tolist() == pytest.approx([math.log(3) / 2, 0.0])
    shifted = tokens.token_centered_logits(logits - 7.0, labels)
    assert torch.allclose(shifted, centered)  # lowering every logit together changes nothing


def test_centered_lpl_equals_two_over_beta_ln2_while_the_model_is_its_reference():
    model, batch = _model(), _batch()
    logits = model.logits[:, :-1]
    centered = tokens.token_centered_logits(logits.detach(), batch["forget"]["labels"][:, 1:])
    batch["forget"]["ref_token_values"] = torch.nn.functional.pad(centered, (1, 0))
    config = METHODS["tif"].config_cls(lpl_space="centered", beta=0.5, lambda_pl=0.0)
    loss, logs = METHODS["tif"].compute_loss(model, batch, config)
    assert logs["lpl"] == pytest.approx((2 / 0.5) * math.log(2), rel=1e-6)


def test_targeted_methods_need_spans_and_untargeted_ones_do_not():
    for name in ("ga", "graddiff", "npo", "simnpo"):
        method = METHODS[name]
        assert method.needs_spans(method.config_cls(targeted=True))
        assert not method.needs_spans(method.config_cls())
    assert METHODS["tif"].needs_spans(METHODS["tif"].config_cls())
