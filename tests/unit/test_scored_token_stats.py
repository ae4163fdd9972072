"""The scoring tail (log p of each label token and the argmax prediction, a few positions at a
time in float32) equals the full-tensor computation, for half-precision logits too."""

from __future__ import annotations

import pytest
import torch

from tif_unlearn import tokens
from tif_unlearn.evaluate.scoring import scored_token_stats


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_scored_token_stats_equal_the_full_tensor_values(dtype):
    torch.manual_seed(0)
    logits = (3 * torch.randn(3, 9, 50)).to(dtype)  # (B, T, V)
    labels = torch.randint(0, 50, (3, 9))
    labels[0, :3] = tokens.IGNORE_INDEX  # prompt
    labels[2, 5:] = tokens.IGNORE_INDEX  # padding
    keep = labels != tokens.IGNORE_INDEX
    logps, preds = scored_token_stats(logits, labels)
    assert logps.shape == preds.shape == (int(keep.sum()),)  # row-major, scored positions only
    expected = tokens.token_logprobs(logits, labels)[keep]
    assert torch.allclose(logps, expected, atol=1e-5)
    assert torch.equal(preds, logits.argmax(-1)[keep])
