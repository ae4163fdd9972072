"""Targeted forget terms (UW tokens only + Preservation Loss on GW), forget weights and the
centred-logit LPL, on hand-computed numbers.

One sample, vocabulary of 2, three positions: a prompt token and two answer tokens. The
shifted logits give p(first answer token = 0) = 3/4 (logits [ln 3, 0]) and p(second = 1) = 1/2
(logits [0, 0]). The first answer token is UW, the second GW.
"""

from __future__ import annotations

import dataclasses
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
        self.calls = 0  # forward passes run

    def forward(self, input_ids, attention_mask):
        self.calls += 1
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


def test_targeted_npo_reads_the_reference_of_the_uw_token():
    # The reference log-probs differ per position now: ln 1/2 at the UW token (position 1),
    # ln 1/4 at the GW token. The UW log ratio stays ln(3/4) − ln(1/2) = ln 1.5 (as above).
    model, batch = _model(), _batch()
    batch["forget"]["ref_token_values"] = torch.tensor([[0.0, math.log(0.5), math.log(0.25)]])
    config = METHODS["npo"].config_cls(targeted=True, beta=1.0)
    loss, _ = METHODS["npo"].compute_loss(model, batch, config)
    assert float(loss.detach()) == pytest.approx(-2 * math.log(0.4) + PL, rel=1e-5)


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
    assert not METHODS["idkdpo"].needs_spans(METHODS["idkdpo"].config_cls())  # no ``targeted``


def test_only_idkdpo_uses_refusals_and_the_registry_is_read_only():
    assert {name for name, method in METHODS.items() if method.uses_idk} == {"idkdpo"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        METHODS["tif"].summary = "changed"


# --------------------------------------------------------------------------- retain and idk streams


def _stream(labels: list[int], **extra) -> dict:
    n = len(labels)
    return {
        "input_ids": torch.tensor([[1] * n]),
        "attention_mask": torch.ones(1, n, dtype=torch.long),
        "labels": torch.tensor([labels]),
        **extra,
    }


# Answer tokens (1, 1) under the fixed logits: p = 1/4 at position 0, 1/2 at position 1.
RETAIN_NLL = (math.log(4) + math.log(2)) / 2  # = 1.5 ln 2 per token
GA_TERM = -(math.log(4 / 3) + PL) / 2  # −NLL of the forget answer (0, 1)


@pytest.mark.parametrize("weight", [0.0, 2.0])
def test_graddiff_adds_the_weighted_retain_nll(weight):
    model = _model()
    batch = {**_batch(), "retain": _stream([-100, 1, 1])}
    config = METHODS["graddiff"].config_cls(lambda_retain=weight)
    loss, logs = METHODS["graddiff"].compute_loss(model, batch, config)
    assert float(loss.detach()) == pytest.approx(GA_TERM + weight * RETAIN_NLL, rel=1e-5)
    if weight:
        assert logs["retain_nll"] == pytest.approx(RETAIN_NLL, rel=1e-5)
        assert model.calls == 2
    else:  # λ_R = 0: no retain forward pass, nothing logged
        assert "retain_nll" not in logs and model.calls == 1


def test_idkdpo_prefers_the_refusal_weighted_by_forget_scale():
    # chosen (refusal, tokens 1, 1): log π = ln(1/8), equal to its reference: ratio 0;
    # rejected (forget answer 0, 1): ln(3/8) − ln(1/4) = ln 1.5.
    # β = 1: −2 log σ(0 − ln 1.5) = −2 ln(1 / 2.5) = 2 ln 2.5; times forget_scale 0.5
    idk = _stream([-100, 1, 1], ref_seq_logp=torch.tensor([math.log(1 / 8)]))
    config = METHODS["idkdpo"].config_cls(beta=1.0, forget_scale=0.5, lambda_retain=0.0)
    loss, logs = METHODS["idkdpo"].compute_loss(_model(), {**_batch(), "idk": idk}, config)
    assert float(loss.detach()) == pytest.approx(0.5 * 2 * math.log(2.5), rel=1e-5)
    assert logs["dpo"] == pytest.approx(2 * math.log(2.5), rel=1e-5)
