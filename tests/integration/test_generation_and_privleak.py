"""Batched generation equals one-at-a-time generation; PrivLeak's attack faces the right way.

Generation sorts prompts by length, left-pads each batch and puts the answers back in the
callers' order: any slip there (right padding, a wrong index) changes some answer. The model is
float64 so that greedy argmaxes are not flipped by the rounding of other batch shapes.

PrivLeak: a model trained on the forget texts must find them more likely than the holdout texts,
so mia_auc (P(forget looks more like a member)) is 1, and PrivLeak against a retrained model's
AUC of 0.5 is (1 − 1 − 0.5) / 0.5 = −100 % (metrics.privleak); swapping forget and holdout in
the pipeline gives 0 and +100 %.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import build_model
from eval_data import PROMPTS, write_muse_folder
from tif_unlearn import losses, tokens
from tif_unlearn.data.batches import pad_stream
from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import TextRecord
from tif_unlearn.evaluate.generation import generate
from tif_unlearn.evaluate.muse import MuseEvalOptions, privleak


@pytest.mark.parametrize("chat", [True, False], ids=["chat-template", "plain-prompt"])
@pytest.mark.parametrize("raw", [False, True], ids=["questions", "raw-prompts"])
def test_batched_generation_equals_one_prompt_at_a_time(chat, raw, tokenizer, plain_tokenizer):
    tok = tokenizer if chat else plain_tokenizer
    model = build_model(len(tok), seed=11).double()
    side = tok.padding_side
    options = dict(max_new_tokens=6, raw_prompts=raw)
    alone = generate(model, tok, PROMPTS, batch_size=1, **options)
    batched = generate(model, tok, PROMPTS, batch_size=3, **options)  # 3 batches, mixed lengths
    everything = generate(model, tok, PROMPTS, batch_size=len(PROMPTS), **options)
    assert len(set(alone)) > 2, "the prompts should lead to different answers"
    assert batched == alone and everything == alone
    assert tok.padding_side == side  # restored


def _train_on(model, tokenizer, texts: list[str], steps: int = 60) -> None:
    examples = [encode_record(tokenizer, TextRecord(t)).as_dict() for t in texts]
    batch = pad_stream(examples, tokenizer.pad_token_id)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits, labels = tokens.shift_for_next_token(out.logits, batch["labels"])
        loss = losses.nll_loss(tokens.token_logprobs(logits, labels), labels != -100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def test_privleak_sees_the_memorized_forget_set_as_members(tokenizer, tmp_path):
    folder = write_muse_folder(tmp_path / "muse-news")
    forget = json.loads((folder / "privleak" / "forget.json").read_text(encoding="utf-8"))
    model = build_model(len(tokenizer), seed=2)
    options = MuseEvalOptions(data_dir=str(folder), batch_size=8, retain_auc=0.5)
    before = privleak(model, tokenizer, options)["min_k_auc"]
    _train_on(model, tokenizer, forget)
    result = privleak(model, tokenizer, options)
    assert before < 1.0  # the untrained model does not already separate them
    assert result["min_k_auc"] == 1.0
    assert result["privleak"] == pytest.approx(-100.0)
