"""Unit tests for tif_unlearn.losses (and its token helpers, tif_unlearn.tokens) on
hand-computed tensors.

Each expected value is written out with its arithmetic (lm-evaluation-harness style)
and computed with math.log / math.exp, never by calling the function under test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tif_unlearn.losses import (
    dpo_loss,
    logit_preference_loss,
    nll_loss,
    npo_loss,
    per_token_nll,
    preservation_loss,
    sequence_logprob,
    simnpo_loss,
)
from tif_unlearn.tokens import IGNORE_INDEX, shift_for_next_token, token_logits, token_logprobs


def softplus(x: float) -> float:
    """log(1 + e^x) = −log σ(−x)."""
    return math.log1p(math.exp(x))


# --------------------------------------------------------------------------- token level


def test_shift_for_next_token_drops_last_logit_and_first_label():
    logits = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    labels = torch.tensor([[10, 11, 12, 13], [20, 21, 22, 23]])
    shifted_logits, shifted_labels = shift_for_next_token(logits, labels)
    assert shifted_logits.shape == (2, 3, 3)
    assert torch.equal(shifted_logits, logits[:, :3, :])
    assert shifted_labels.tolist() == [[11, 12, 13], [21, 22, 23]]


def test_token_logits_gathers_raw_logit_and_zeroes_ignored():
    # logits[b, t, v] = 12·b + 4·t + v
    logits = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    labels = torch.tensor([[1, IGNORE_INDEX, 3], [0, 2, IGNORE_INDEX]])
    # [0,0,1] = 1; ignored -> 0; [0,2,3] = 8 + 3 = 11
    # [1,0,0] = 12; [1,1,2] = 12 + 4 + 2 = 18; ignored -> 0
    assert token_logits(logits, labels).tolist() == [[1.0, 0.0, 11.0], [12.0, 18.0, 0.0]]


def test_token_logprobs_hand_computed():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]]])
    labels = torch.tensor([[1, 3, IGNORE_INDEX]])
    # uniform over 4: log(1/4); second row: 4 − log(e + e² + e³ + e⁴); ignored -> 0
    expected = [
        -math.log(4.0),
        4.0 - math.log(sum(math.exp(k) for k in (1, 2, 3, 4))),
        0.0,
    ]
    got = token_logprobs(logits, labels)
    assert got.dtype == torch.float32
    assert got[0].tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_token_logprobs_matches_naive_log_softmax(dtype):
    torch.manual_seed(0)
    logits = (torch.randn(3, 5, 11) * 3).to(dtype)
    labels = torch.randint(0, 11, (3, 5))
    labels[0, 0] = labels[2, 3] = IGNORE_INDEX
    ignored = labels == IGNORE_INDEX
    naive = torch.log_softmax(logits.float(), dim=-1)
    naive = naive.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    naive = naive.masked_fill(ignored, 0.0)
    got = token_logprobs(logits, labels)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, naive, atol=1e-5, rtol=0)
    assert got[ignored].tolist() == [0.0, 0.0]


def test_token_logprobs_gradient_matches_naive():
    torch.manual_seed(1)
    base = torch.randn(2, 4, 7)
    labels = torch.randint(0, 7, (2, 4))
    labels[1, 2] = IGNORE_INDEX
    ours = base.clone().requires_grad_(True)
    token_logprobs(ours, labels).sum().backward()
    naive = base.clone().requires_grad_(True)
    mask = labels != IGNORE_INDEX
    logp = torch.log_softmax(naive, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    (logp * mask).sum().backward()
    torch.testing.assert_close(ours.grad, naive.grad, atol=1e-6, rtol=0)
    assert torch.all(ours.grad[1, 2] == 0)


def test_per_token_nll_is_negated_logprob_and_zero_when_ignored():
    logits = torch.tensor([[[0.0, math.log(3.0)], [2.0, 2.0]]])
    labels = torch.tensor([[1, IGNORE_INDEX]])
    # p(1) = 3 / (1 + 3) = 0.75 -> NLL = −log 0.75; ignored -> 0
    assert per_token_nll(logits, labels)[0].tolist() == pytest.approx([-math.log(0.75), 0.0])


def test_sequence_logprob_sums_masked_tokens():
    token_logps = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -4.0]])
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    # −1 − 2 = −3; −0.5 − 4 = −4.5
    assert sequence_logprob(token_logps, mask).tolist() == [-3.0, -4.5]


def test_nll_loss_is_token_mean_over_batch():
    token_logps = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -4.0]])
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool)
    # (1 + 2 + 0.5 + 4) / 4 tokens = 1.875 (not the mean of per-sample means 1.5/2.25)
    assert nll_loss(token_logps, mask).item() == pytest.approx(1.875)


def test_nll_loss_matches_hf_cross_entropy():
    torch.manual_seed(2)
    logits = torch.randn(2, 6, 9)
    labels = torch.randint(0, 9, (2, 6))
    labels[:, :2] = IGNORE_INDEX
    shifted_logits, shifted_labels = shift_for_next_token(logits, labels)
    expected = F.cross_entropy(
        shifted_logits.reshape(-1, 9), shifted_labels.reshape(-1), ignore_index=IGNORE_INDEX
    )
    mask = shifted_labels != IGNORE_INDEX
    got = nll_loss(token_logprobs(shifted_logits, shifted_labels), mask)
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)


def test_nll_loss_empty_mask_is_zero_with_graph():
    token_logps = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    loss = nll_loss(token_logps, torch.zeros(1, 2, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert token_logps.grad.tolist() == [[0.0, 0.0]]


# --------------------------------------------------------------------------- TIF

# Two samples; sample 0 has UW at t=0,1, sample 1 at t=2.
LPL_POLICY = [[4.0, 2.0, 9.0], [1.0, 3.0, 5.0]]
LPL_REF = [[6.0, 4.0, 0.0], [0.0, 0.0, 11.0]]
LPL_UW = [[True, True, False], [False, False, True]]
# per-sample UW means: policy (4 + 2)/2 = 3, 5; ref (6 + 4)/2 = 5, 11
# Δ_0 = 5 − 3 = 2, Δ_1 = 11 − 5 = 6; batch Δ = (5 + 11)/2 − (3 + 5)/2 = 4
# (pooling tokens instead would give (6+4+11)/3 − (4+2+5)/3 = 10/3)


def lpl_inputs():
    return (
        torch.tensor(LPL_POLICY, requires_grad=True),
        torch.tensor(LPL_REF),
        torch.tensor(LPL_UW),
    )


def test_lpl_default_batch_level_delta():
    policy, ref, uw = lpl_inputs()
    beta = 0.5
    # −(2/β)·log σ(β·Δ) = (2/0.5)·log(1 + e^{−0.5·4}) = 4·log(1 + e^{−2})
    expected = 4.0 * softplus(-2.0)
    assert logit_preference_loss(policy, ref, uw, beta).item() == pytest.approx(expected)


def test_lpl_per_sample_differs_from_default():
    policy, ref, uw = lpl_inputs()
    beta = 0.5
    # mean_i 4·log(1 + e^{−0.5·Δ_i}) = (4·log(1 + e^{−1}) + 4·log(1 + e^{−3})) / 2
    expected = (4.0 * softplus(-1.0) + 4.0 * softplus(-3.0)) / 2
    per_sample = logit_preference_loss(policy, ref, uw, beta, per_sample=True).item()
    default = logit_preference_loss(policy, ref, uw, beta).item()
    assert per_sample == pytest.approx(expected)
    # 4·log(1 + e^{−2}) ≈ 0.5077 vs ≈ 0.7216: Jensen gap of the convex −log σ
    assert default == pytest.approx(4.0 * softplus(-2.0))
    assert per_sample - default > 0.1


@pytest.mark.parametrize("per_sample", [False, True])
def test_lpl_excludes_samples_without_uw(per_sample):
    policy, ref, uw = lpl_inputs()
    # a third sample with no UW token and extreme logits must change nothing
    policy3 = torch.cat([policy.detach(), torch.tensor([[100.0, -50.0, 7.0]])]).requires_grad_()
    ref3 = torch.cat([ref, torch.tensor([[-100.0, 80.0, 3.0]])])
    uw3 = torch.cat([uw, torch.zeros(1, 3, dtype=torch.bool)])
    two = logit_preference_loss(policy, ref, uw, 0.5, per_sample=per_sample).item()
    three = logit_preference_loss(policy3, ref3, uw3, 0.5, per_sample=per_sample)
    assert three.item() == pytest.approx(two)
    three.backward()
    assert policy3.grad[2].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("per_sample", [False, True])
def test_lpl_no_uw_anywhere_is_zero_and_connected(per_sample):
    policy = torch.tensor(LPL_POLICY, requires_grad=True)
    uw = torch.zeros(2, 3, dtype=torch.bool)
    loss = logit_preference_loss(policy, torch.tensor(LPL_REF), uw, 0.3, per_sample=per_sample)
    assert loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert policy.grad is not None
    assert policy.grad.abs().sum().item() == 0.0


@pytest.mark.parametrize("beta", [0.0, -0.1])
def test_lpl_rejects_non_positive_beta(beta):
    policy, ref, uw = lpl_inputs()
    with pytest.raises(ValueError, match="beta"):
        logit_preference_loss(policy, ref, uw, beta)


def test_lpl_gradient_pushes_uw_logits_down_only():
    policy, ref, uw = lpl_inputs()
    logit_preference_loss(policy, ref, uw, 0.5).backward()
    # dL/dΔ = −2·σ(−βΔ); dΔ/dz_θ(t) = −1 / (N_samples · n_UW(sample))
    # => dL/dz = 2·σ(−2) / (2·n): sample 0 (n=2): σ(−2)/2, sample 1 (n=1): σ(−2)
    sig = 1.0 / (1.0 + math.exp(2.0))
    expected = [[sig / 2, sig / 2, 0.0], [0.0, 0.0, sig]]
    assert policy.grad.tolist()[0] == pytest.approx(expected[0])
    assert policy.grad.tolist()[1] == pytest.approx(expected[1])
    assert torch.all(policy.grad[uw] > 0)
    assert torch.all(policy.grad[~uw] == 0)


def test_lpl_per_sample_gradient():
    policy, ref, uw = lpl_inputs()
    logit_preference_loss(policy, ref, uw, 0.5, per_sample=True).backward()
    # L = mean_i −(2/β)·log σ(βΔ_i); dL/dz(t∈i) = (1/N)·2·σ(−βΔ_i)/n_i
    # sample 0: (1/2)·2·σ(−1)/2 = σ(−1)/2; sample 1: (1/2)·2·σ(−3)/1 = σ(−3)
    s1, s3 = 1 / (1 + math.exp(1.0)), 1 / (1 + math.exp(3.0))
    assert policy.grad.tolist()[0] == pytest.approx([s1 / 2, s1 / 2, 0.0])
    assert policy.grad.tolist()[1] == pytest.approx([0.0, 0.0, s3])


def test_preservation_loss_sums_per_sample_then_averages_all_samples():
    nll = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    gw = torch.tensor([[True, False, True], [False, False, False]])
    # sample sums: 1 + 3 = 4, 0 (no GW); mean over B=2 samples: (4 + 0)/2 = 2
    loss = preservation_loss(nll, gw)
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    # each GW token weighs 1/B = 0.5
    assert nll.grad.tolist() == [[0.5, 0.0, 0.5], [0.0, 0.0, 0.0]]


# --------------------------------------------------------------------------- baselines


def test_npo_loss_hand_computed():
    policy = torch.tensor([-2.0, -4.0], requires_grad=True)
    ref = torch.tensor([-1.0, -1.0])
    # log ratio = [−1, −3]; β = 0.5 -> −β·ratio = [0.5, 1.5]
    # −(2/β)·log σ(x) = 4·log(1 + e^{−x}); mean over 2
    # (= paper form (2/β)·log(1 + (π/π_ref)^β) = 4·log(1 + e^{0.5·ratio}))
    expected = (4 * softplus(-0.5) + 4 * softplus(-1.5)) / 2
    loss = npo_loss(policy, ref, beta=0.5)
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    # descending the loss lowers the forget log-probs
    assert torch.all(policy.grad > 0)


def test_simnpo_loss_hand_computed():
    policy = torch.tensor([-2.0, -6.0])
    lengths = torch.tensor([2, 3])
    # β = 2, γ = 0.5: −(β/|y|)·log π = [2/2·2, 2/3·6] = [2, 4]; − γ -> [1.5, 3.5]
    # −(2/β)·log σ(x) = 1·log(1 + e^{−x}); mean over 2
    expected = (softplus(-1.5) + softplus(-3.5)) / 2
    assert simnpo_loss(policy, lengths, beta=2.0, gamma=0.5).item() == pytest.approx(expected)
    # γ = 0: [2, 4] -> (log(1 + e^{−2}) + log(1 + e^{−4})) / 2
    expected0 = (softplus(-2.0) + softplus(-4.0)) / 2
    assert simnpo_loss(policy, lengths, beta=2.0).item() == pytest.approx(expected0)


def test_simnpo_is_length_normalised():
    # the same per-token log-prob (−1) on answers of length 2 and 8 gives equal terms
    short = simnpo_loss(torch.tensor([-2.0]), torch.tensor([2]), beta=1.0)
    long = simnpo_loss(torch.tensor([-8.0]), torch.tensor([8]), beta=1.0)
    # −(2/1)·log σ(1·1) = 2·log(1 + e^{−1})
    assert short.item() == pytest.approx(2 * softplus(-1.0))
    assert long.item() == pytest.approx(short.item())


def test_dpo_loss_hand_computed():
    policy_chosen = torch.tensor([-3.0, -1.0], requires_grad=True)
    policy_rejected = torch.tensor([-2.0, -5.0], requires_grad=True)
    ref_chosen = torch.tensor([-4.0, -1.0])
    ref_rejected = torch.tensor([-2.0, -3.0])
    # chosen ratio [1, 0], rejected ratio [0, −2]; margin [1, 2]; β = 0.5 -> [0.5, 1]
    # −(2/β)·log σ(x) = 4·log(1 + e^{−x}); mean over 2
    expected = (4 * softplus(-0.5) + 4 * softplus(-1.0)) / 2
    loss = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.5)
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    # descent raises the chosen (refusal) and lowers the rejected (true answer)
    assert torch.all(policy_chosen.grad < 0)
    assert torch.all(policy_rejected.grad > 0)


@pytest.mark.parametrize("beta", [0.0, -1.0])
def test_baselines_reject_non_positive_beta(beta):
    x = torch.tensor([-1.0])
    with pytest.raises(ValueError, match="beta"):
        npo_loss(x, x, beta=beta)
    with pytest.raises(ValueError, match="beta"):
        simnpo_loss(x, torch.tensor([1]), beta=beta)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(x, x, x, x, beta=beta)
