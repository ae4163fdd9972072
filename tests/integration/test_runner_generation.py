"""generation.generate and generation.sample on the tiny model: batching does not change greedy
answers, samples come back grouped per prompt in prompt order, seeded, RNG state untouched."""

from __future__ import annotations

import torch

from tif_unlearn.evaluate.generation import generate, sample

QUESTIONS = ["Where was Basil born?", "Which award did Jaime win in the year 1999?", "Who?"]


def test_batched_greedy_equals_one_at_a_time(tiny_model, tokenizer):
    batched = generate(tiny_model, tokenizer, QUESTIONS, max_new_tokens=6, batch_size=8)
    single = [generate(tiny_model, tokenizer, [q], max_new_tokens=6)[0] for q in QUESTIONS]
    assert batched == single


def test_near_zero_temperature_samples_are_the_greedy_answer_of_their_prompt(tiny_model, tokenizer):
    greedy = generate(tiny_model, tokenizer, QUESTIONS, max_new_tokens=5)
    groups = sample(
        tiny_model, tokenizer, QUESTIONS, n=3, temperature=1e-4, max_new_tokens=5, batch_size=4
    )
    assert [len(g) for g in groups] == [3, 3, 3]
    assert groups == [[answer] * 3 for answer in greedy]  # grouping follows prompt order


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(tiny_model, tokenizer):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = sample(tiny_model, tokenizer, QUESTIONS, n=4, seed=5, max_new_tokens=6)
    assert torch.equal(torch.rand(3), expected_next)
    again = sample(tiny_model, tokenizer, QUESTIONS, n=4, seed=5, max_new_tokens=6)
    other = sample(tiny_model, tokenizer, QUESTIONS, n=4, seed=6, max_new_tokens=6)
    assert first == again and first != other
    assert len({text for group in first for text in group}) > 3  # temperature 1 varies
