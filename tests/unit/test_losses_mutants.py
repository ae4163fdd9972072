"""Hand-computed cases that kill mutants of losses.py and tokens.py the other tests let live
(benchmarks/mutation.py; notes in benchmarks/mutation_notes.json)."""

from __future__ import annotations

import math

import pytest
import torch

from tif_unlearn.losses import nll_loss, simnpo_loss
from tif_unlearn.tokens import IGNORE_INDEX, token_centered_logits


def test_nll_loss_of_a_single_token_is_its_nll():
    # one masked token: the count is 1, so clamp(min=1) must not change it: 0.7 / 1 = 0.7
    token_logps = torch.tensor([[-0.7, -5.0]])
    mask = torch.tensor([[True, False]])
    assert nll_loss(token_logps, mask).item() == pytest.approx(0.7)


def test_simnpo_of_a_one_token_answer_divides_by_one():
    # |y| = 1: -(2/β)·log σ(−(β/1)·log π) with β = 1, log π = −2: −2·log σ(2) = 2·log(1 + e^−2)
    got = simnpo_loss(torch.tensor([-2.0]), torch.tensor([1]), beta=1.0)
    assert got.item() == pytest.approx(2 * math.log1p(math.exp(-2.0)))


def test_centered_logit_is_zero_at_ignored_positions():
    # logits of one position: [1, 2, 6] (mean 3); label 2 -> 6 − 3 = 3; an ignored label -> 0.0
    logits = torch.tensor([[[1.0, 2.0, 6.0], [4.0, 0.0, 5.0]]])
    labels = torch.tensor([[2, IGNORE_INDEX]])
    assert token_centered_logits(logits, labels).tolist() == [[3.0, 0.0]]
