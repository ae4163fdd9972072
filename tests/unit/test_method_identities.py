"""First-step identities of the reference-based methods, through their real hooks.

While the model still equals its reference every log-ratio is 0, so (losses.py):
- TIF:    L_LPL = −(2/β)·log σ(0) = (2/β)·ln 2, and ∇L_LPL = 2σ(0)·∇(mean UW value) = ∇(mean UW
          value): descending pushes the UW tokens' logits (log-probs, centred logits) down;
- NPO:    L = (2/β)·ln 2 and ∇L = 2σ(0)·∇ mean log π(y|x) = ∇ mean log π(y|x);
- IdkDPO: L = (2/β)·ln 2 and ∇L = ∇ mean log π(true answer) − ∇ mean log π(refusal).

The loss values catch a reference read at the wrong position (TIF's ``[:, 1:]``) or of the wrong
kind (logits vs log-probs); the gradients catch a flipped sign or swapped chosen/rejected, which
leave the first-step value unchanged. The expected gradients come from our own forward pass,
one example at a time, reading token t's logit at position t − 1 (not through the methods' code).

Float64 model; the cached reference is stored in float32 (trainer.cache_reference), so a log-ratio
is at most 2^-24·|reference value| from 0, and d(loss)/d(log-ratio) = ±1 at 0: the loss may sit
that far from (2/β)·ln 2. Gradients run through float32 token values (tokens.token_logits): measured
<= 1e-7 of the largest element apart, checked at 1e-5, while a wrong sign or stream is off by
the whole gradient.
"""

from __future__ import annotations

import math

import pytest
import torch

from conftest import QA_PAIRS, UNWANTED, annotate, build_model
from tif_unlearn.data.batches import pad_stream
from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import QARecord
from tif_unlearn.methods import METHODS
from tif_unlearn.methods.base import reference_values
from tif_unlearn.train.streams import cache_reference

REFUSALS = ["I don't know who that is.", "I am not sure.", "I don't know.", "I am not sure who."]
FLOAT32_REL = 2.0**-24


def _forget_records() -> list[QARecord]:
    rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    spans = [tuple(tuple(s) for s in row["unwanted_spans"]) for row in rows]
    return [QARecord(r["question"], r["answer"], s) for r, s in zip(rows, spans, strict=True)]


def _idk_records() -> list[QARecord]:
    return [QARecord(r["question"], a) for r, a in zip(QA_PAIRS, REFUSALS, strict=True)]


@pytest.fixture
def model(tokenizer):
    return build_model(len(tokenizer), seed=5).double()


def _streams(model, tokenizer, method, config, live: bool) -> dict[str, dict]:
    """Padded forget (and idk) streams with the method's reference values filled in."""
    pad = tokenizer.pad_token_id
    records = {"forget": _forget_records(), "idk": _idk_records()}
    streams = {}
    for name, kind in method.reference(config).items():
        examples = [encode_record(tokenizer, r).as_dict() for r in records[name]]
        if live:  # as UnlearnTrainer._fill_live_reference does every step
            stream = pad_stream(examples, pad)
            stream.update(reference_values(model, stream, kind))
        else:  # as the pipeline does before training (other batch shapes, float32 storage)
            stream = pad_stream(cache_reference(model, examples, kind, pad_token_id=pad), pad)
        streams[name] = stream
    return streams


def _gradient(model, value: torch.Tensor) -> torch.Tensor:
    grads = torch.autograd.grad(value, list(model.parameters()), allow_unused=True)
    flat = [
        g if g is not None else torch.zeros_like(p)
        for g, p in zip(grads, model.parameters(), strict=True)
    ]
    return torch.cat([g.reshape(-1) for g in flat])


def _assert_same_gradient(got: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float32 rounding of the token values: each element within 1e-5 of the
    largest (a flipped sign or another stream is off by the whole gradient)."""
    scale = float(expected.abs().max())
    assert scale > 0
    torch.testing.assert_close(got, expected, rtol=0.0, atol=1e-5 * scale)


def _own_token_values(model, tokenizer, record: QARecord, space: str, which: str) -> torch.Tensor:
    """Our own reading of one example: the logit / log-prob of token t from position t − 1,
    at the UW tokens (``which="uw"``), GW tokens (``"gw"``) or all answer tokens (``"answer"``)."""
    encoded = encode_record(tokenizer, record)
    ids = torch.tensor([encoded.input_ids])
    logits = model(input_ids=ids).logits[0]  # (T, V)
    if space == "logprob":
        logits = torch.log_softmax(logits, dim=-1)
    elif space == "centered":
        logits = logits - logits.mean(dim=-1, keepdim=True)
    selected = {
        "uw": encoded.uw_mask,
        "gw": encoded.gw_mask,
        "answer": [label != -100 for label in encoded.labels],
    }[which]
    positions = [t for t in range(1, len(encoded.input_ids)) if selected[t]]
    assert positions, "the example has no such tokens"
    return torch.stack([logits[t - 1, encoded.input_ids[t]] for t in positions])


def _mean_over_examples(model, tokenizer, records, space, which, reduce) -> torch.Tensor:
    values = [_own_token_values(model, tokenizer, r, space, which) for r in records]
    return torch.stack([reduce(v) for v in values]).mean()


# --------------------------------------------------------------------------- TIF


@pytest.mark.parametrize("live", [False, True], ids=["cached", "live"])
@pytest.mark.parametrize("per_sample", [False, True], ids=["batch", "per-sample"])
@pytest.mark.parametrize("space", ["logit", "logprob", "centered"])
def test_tif_first_step_lpl_is_two_over_beta_ln2_and_pushes_uw_tokens_down(
    space, per_sample, live, model, tokenizer
):
    method = METHODS["tif"]
    config = method.config_cls(beta=0.3, lpl_space=space, per_sample=per_sample, lambda_pl=0.0)
    batch = _streams(model, tokenizer, method, config, live)
    loss, logs = method.compute_loss(model, batch, config)

    reference = batch["forget"]["ref_token_values"]
    bound = FLOAT32_REL * float(reference.abs().max()) + 1e-12
    assert logs["lpl"] == pytest.approx(2 / 0.3 * math.log(2), abs=bound)

    expected = _gradient(  # ∇ of the mean (over examples) of the mean UW value
        model, _mean_over_examples(model, tokenizer, _forget_records(), space, "uw", torch.mean)
    )
    _assert_same_gradient(_gradient(model, loss), expected)


def test_tif_forget_scale_and_preservation_term(model, tokenizer):
    method = METHODS["tif"]
    config = method.config_cls(beta=0.5, lambda_pl=0.7, forget_scale=0.1)
    batch = _streams(model, tokenizer, method, config, live=False)
    loss, logs = method.compute_loss(model, batch, config)
    # L_PL: GW-token NLL summed per example, mean over the examples (our own forward passes).
    pl = -_mean_over_examples(model, tokenizer, _forget_records(), "logprob", "gw", torch.sum)
    assert logs["pl"] == pytest.approx(float(pl), rel=1e-5)
    lpl = 2 / 0.5 * math.log(2)
    assert float(loss) == pytest.approx(0.1 * (lpl + 0.7 * float(pl)), rel=1e-5)


# --------------------------------------------------------------------------- NPO, IdkDPO


@pytest.mark.parametrize("live", [False, True], ids=["cached", "live"])
def test_npo_first_step_loss_and_gradient_lower_the_forget_likelihood(live, model, tokenizer):
    method = METHODS["npo"]
    config = method.config_cls(beta=0.2)
    batch = _streams(model, tokenizer, method, config, live)
    loss, _ = method.compute_loss(model, batch, config)

    bound = FLOAT32_REL * float(batch["forget"]["ref_seq_logp"].abs().max()) + 1e-12
    assert float(loss) == pytest.approx(2 / 0.2 * math.log(2), abs=bound)
    seq_logp = _mean_over_examples(model, tokenizer, _forget_records(), "logprob", "answer", sum)
    _assert_same_gradient(_gradient(model, loss), _gradient(model, seq_logp))


@pytest.mark.parametrize("live", [False, True], ids=["cached", "live"])
def test_idkdpo_first_step_prefers_the_refusal_over_the_answer(live, model, tokenizer):
    method = METHODS["idkdpo"]
    config = method.config_cls(beta=0.4)
    batch = _streams(model, tokenizer, method, config, live)
    loss, _ = method.compute_loss(model, batch, config)

    largest = max(float(batch[s]["ref_seq_logp"].abs().max()) for s in ("forget", "idk"))
    assert float(loss) == pytest.approx(
        2 / 0.4 * math.log(2), abs=2 * FLOAT32_REL * largest + 1e-12
    )
    answer = _mean_over_examples(model, tokenizer, _forget_records(), "logprob", "answer", sum)
    refusal = _mean_over_examples(model, tokenizer, _idk_records(), "logprob", "answer", sum)
    expected = _gradient(model, answer - refusal)  # descend: answer down, refusal up
    _assert_same_gradient(_gradient(model, loss), expected)
