"""Early-exit greedy generation (evaluate/greedy.py) gives ``model.generate``'s answers while
finished answers leave the batch.

The tiny model is float64 so that argmaxes are not flipped by the rounding of other batch
shapes. Its "end" token is one it actually emits mid-answer, so answers end at different steps
and rows leave the batch (and waiting prompts join running answers) along the way.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from conftest import build_model
from eval_data import PROMPTS
from tif_unlearn.evaluate import generation
from tif_unlearn.evaluate.greedy import greedy_token_ids, plain_greedy_config
from tif_unlearn.evaluate.scoring import cache_argument_name

MAX_NEW = 12


def reference_answers(model, tokenizer, batch_size=7) -> list[str]:
    """``model.generate`` over the same prompts (the path used before early exit)."""
    return generation.generate(
        model, tokenizer, PROMPTS, max_new_tokens=MAX_NEW, batch_size=batch_size, early_exit=False
    )


@pytest.fixture
def model_with_early_ends(tokenizer):
    """A float64 tiny model whose end token is the token it emits most often mid-answer."""
    model = build_model(len(tokenizer), seed=5).double().eval()
    model.generation_config.eos_token_id = None
    texts, special = generation._prompt_texts(tokenizer, PROMPTS, False, None)
    encoded = tokenizer(texts, add_special_tokens=special)["input_ids"]
    counts = Counter()
    with torch.no_grad():
        for ids in encoded:
            out = model.generate(torch.tensor([ids]), max_new_tokens=MAX_NEW, do_sample=False)
            counts.update(out[0, len(ids) : -1].tolist())
    model.generation_config.eos_token_id = counts.most_common(1)[0][0]
    return model


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7])
def test_early_exit_answers_equal_model_generate(model_with_early_ends, tokenizer, batch_size):
    expected = reference_answers(model_with_early_ends, tokenizer)
    answers = generation.generate(
        model_with_early_ends, tokenizer, PROMPTS, max_new_tokens=MAX_NEW, batch_size=batch_size
    )
    assert len(set(expected)) > 2, "the prompts should lead to different answers"
    assert answers == expected


def test_finished_answers_leave_the_batch(model_with_early_ends, tokenizer):
    model, decoded_rows = model_with_early_ends, []

    def count_rows(module, args, kwargs):
        if kwargs["input_ids"].shape[1] == 1:
            decoded_rows.append(kwargs["input_ids"].shape[0])

    texts, special = generation._prompt_texts(tokenizer, PROMPTS, False, None)
    handle = model.register_forward_pre_hook(count_rows, with_kwargs=True)
    try:
        answers = greedy_token_ids(
            model,
            tokenizer(texts, add_special_tokens=special)["input_ids"],
            max_new_tokens=MAX_NEW,
            batch_size=len(PROMPTS),  # one prefill: every later forward is a decoding step
            stop_ids=[model.generation_config.eos_token_id],
            pad_id=tokenizer.pad_token_id,
            cache_argument=cache_argument_name(model),
        )
    finally:
        handle.remove()
    lengths = [len(ids) for ids in answers]
    assert min(lengths) < MAX_NEW, "some answers should end early"
    # the prefill emits every answer's first token; each later token costs one decoding row
    assert sum(decoded_rows) == sum(n - 1 for n in lengths) < len(PROMPTS) * (MAX_NEW - 1)
    assert decoded_rows == sorted(decoded_rows, reverse=True)


def test_logit_changing_configs_go_through_model_generate(model_with_early_ends, tokenizer):
    model = model_with_early_ends
    plain = generation.generate(model, tokenizer, PROMPTS, max_new_tokens=MAX_NEW, batch_size=3)
    model.generation_config.repetition_penalty = 5.0
    assert not plain_greedy_config(model)
    penalised = generation.generate(model, tokenizer, PROMPTS, max_new_tokens=MAX_NEW, batch_size=3)
    assert penalised == reference_answers(model, tokenizer, batch_size=3)
    assert penalised != plain


def test_joining_prompts_are_prefilled_once_and_merged(model_with_early_ends, tokenizer):
    """With room for 3 rows, the 7 prompts join as rows leave: every prompt is prefilled exactly
    once (running answers are not prefilled again) and the answers stay model.generate's."""
    model, prefilled = model_with_early_ends, []

    def count_prefills(module, args, kwargs):
        if kwargs["input_ids"].shape[1] > 1:
            prefilled.append(kwargs["input_ids"].shape[0])

    handle = model.register_forward_pre_hook(count_prefills, with_kwargs=True)
    try:
        answers = generation.generate(
            model, tokenizer, PROMPTS, max_new_tokens=MAX_NEW, batch_size=3
        )
    finally:
        handle.remove()
    assert sum(prefilled) == len(PROMPTS) and len(prefilled) > 2
    assert answers == reference_answers(model, tokenizer)
