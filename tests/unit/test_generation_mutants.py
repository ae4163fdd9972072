"""Generation details (evaluate/generation.py) that the mutation run found unchecked: the stop
tokens, how prompts are prepared, the rows of each batch, the KV cache, prompt truncation, the
defaults of ``generate`` and ``sample`` and special tokens left out of the answers. A planted
model (tests/planted.py) says a known token, so answers are known by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from conftest import build_model
from planted import MARGIN, next_token_llama
from tif_unlearn.evaluate import generation
from tif_unlearn.evaluate.generation import generate, sample

QUESTIONS = ["Where was Basil born?", "Which award did Jaime win in the year 1999?", "Who?"]


def planted(tokenizer, then_eos: bool):
    """A model that says " Kuwait" after any token, then (``then_eos``) the end token after
    " Kuwait", else " Kuwait" forever."""
    vocab = len(tokenizer)
    word = tokenizer(" Kuwait", add_special_tokens=False)["input_ids"]
    assert len(word) == 1
    always = torch.zeros(vocab)
    always[word[0]] = MARGIN
    logits = {None: always}
    if then_eos:
        logits[word[0]] = torch.zeros(vocab)
        logits[word[0]][tokenizer.eos_token_id] = MARGIN
    model = next_token_llama(vocab, logits)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def forward_shapes(model) -> list[tuple[int, int]]:
    """(rows, positions) of the input_ids of every forward pass of ``model`` from now on."""
    shapes: list[tuple[int, int]] = []
    model.register_forward_pre_hook(
        lambda _m, _args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)),
        with_kwargs=True,
    )
    return shapes


def test_stop_token_ids_are_the_tokenizer_eos_then_the_models_own_distinct():
    tokenizer = SimpleNamespace(eos_token_id=2)

    def model(eos):
        return SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=eos))

    assert generation.stop_token_ids(model([5, 2, 7]), tokenizer) == [2, 5, 7]
    assert generation.stop_token_ids(model(9), tokenizer) == [2, 9]
    assert generation.stop_token_ids(model(None), tokenizer) == [2]
    assert generation.stop_token_ids(SimpleNamespace(), tokenizer) == [2]
    assert generation.stop_token_ids(model(4), SimpleNamespace(eos_token_id=None)) == [4]


def test_prompt_texts_and_special_tokens(tokenizer, plain_tokenizer):
    chat = [generation.chat_prompt(tokenizer, q) for q in QUESTIONS]
    assert chat[0] == "<|im_start|>user\nWhere was Basil born?<|im_end|>\n<|im_start|>assistant\n"
    # chat-template prompts already hold their special tokens; others get BOS etc. added
    assert generation._prompt_texts(tokenizer, QUESTIONS, False, None) == (chat, False)
    plain = [generation.chat_prompt(plain_tokenizer, q) for q in QUESTIONS]
    assert generation._prompt_texts(plain_tokenizer, QUESTIONS, False, None) == (plain, True)
    assert generation._prompt_texts(tokenizer, QUESTIONS, True, None) == (QUESTIONS, True)
    assert generation._prompt_texts(tokenizer, QUESTIONS, True, False) == (QUESTIONS, False)
    assert generation._prompt_texts(plain_tokenizer, QUESTIONS, False, False) == (plain, False)


def test_batches_hold_batch_size_rows(tiny_model, tokenizer):
    shapes = forward_shapes(tiny_model)

    def prefills():
        rows = [rows for rows, positions in shapes if positions > 1]
        shapes.clear()
        return rows

    generate(tiny_model, tokenizer, QUESTIONS, max_new_tokens=3, batch_size=2, early_exit=False)
    assert prefills() == [2, 1]
    sample(tiny_model, tokenizer, QUESTIONS, n=2, batch_size=4, max_new_tokens=3)
    assert prefills() == [4, 2]  # two prompts x two samples, then one x two
    sample(tiny_model, tokenizer, QUESTIONS, n=2, batch_size=3, max_new_tokens=3)
    assert prefills() == [2, 2, 2]  # room for one prompt's two samples only
    sample(tiny_model, tokenizer, QUESTIONS, n=4, batch_size=3, max_new_tokens=3)
    assert prefills() == [4, 4, 4]  # never fewer than one prompt a batch


def test_model_generate_decodes_one_new_token_a_step(tiny_model, tokenizer):
    shapes = forward_shapes(tiny_model)
    generate(tiny_model, tokenizer, QUESTIONS[:1], max_new_tokens=4, early_exit=False)
    assert [positions for _, positions in shapes[1:]] == [1, 1, 1]
    assert shapes[0][1] > 1


@pytest.mark.parametrize("early_exit", [True, False])
def test_long_prompts_keep_their_last_max_prompt_tokens(tiny_model, tokenizer, early_exit):
    shapes = forward_shapes(tiny_model)
    text = "The author Nikolai Abilov writes books about the history of Kazakhstan."
    assert len(tokenizer(text)["input_ids"]) > 3
    generate(
        tiny_model,
        tokenizer,
        [text],
        raw_prompts=True,
        max_prompt_tokens=3,
        max_new_tokens=2,
        early_exit=early_exit,
    )
    assert shapes[0] == (1, 3)


def test_answers_leave_out_the_end_token(tokenizer):
    model = planted(tokenizer, then_eos=True)
    assert generate(model, tokenizer, QUESTIONS[:2], max_new_tokens=5) == ["Kuwait"] * 2
    no_exit = generate(model, tokenizer, QUESTIONS[:2], max_new_tokens=5, early_exit=False)
    assert no_exit == ["Kuwait"] * 2
    assert sample(model, tokenizer, QUESTIONS[:2], n=2, max_new_tokens=5) == [["Kuwait"] * 2] * 2


def test_answers_are_64_new_tokens_by_default(tokenizer):
    model = planted(tokenizer, then_eos=False)
    assert generate(model, tokenizer, QUESTIONS[:1])[0].split() == ["Kuwait"] * 64
    assert sample(model, tokenizer, QUESTIONS[:1], n=1)[0][0].split() == ["Kuwait"] * 64


def test_batches_are_32_rows_by_default(tiny_model, tokenizer):
    shapes = forward_shapes(tiny_model)
    prompts = [f"Who wrote book {i}?" for i in range(33)]
    generate(tiny_model, tokenizer, prompts, max_new_tokens=1)
    assert max(rows for rows, _ in shapes) == 32
    shapes.clear()
    sample(tiny_model, tokenizer, prompts, n=1, max_new_tokens=1)
    assert max(rows for rows, _ in shapes) == 32


def test_defaults_are_chat_prompts_seed_0_and_temperature_1(tiny_model, tokenizer):
    greedy = generate(tiny_model, tokenizer, QUESTIONS, max_new_tokens=4)
    assert greedy == generate(tiny_model, tokenizer, QUESTIONS, max_new_tokens=4, raw_prompts=False)
    assert greedy != generate(tiny_model, tokenizer, QUESTIONS, max_new_tokens=4, raw_prompts=True)
    sampled = sample(tiny_model, tokenizer, QUESTIONS, n=3, max_new_tokens=4)
    explicit = dict(seed=0, raw_prompts=False)
    assert sampled == sample(tiny_model, tokenizer, QUESTIONS, n=3, max_new_tokens=4, **explicit)
    for other in (dict(seed=1), dict(raw_prompts=True)):
        assert sampled != sample(tiny_model, tokenizer, QUESTIONS, n=3, max_new_tokens=4, **other)
    # the tiny model's next-token distributions are almost flat: the same draws pick the same
    # tokens at temperature 1 and 2. Logits of spread 4 (one distribution after every token):
    spread = 4 * torch.randn(len(tokenizer), generator=torch.Generator().manual_seed(0))
    model = next_token_llama(len(tokenizer), {None: spread})
    sampled = sample(model, tokenizer, QUESTIONS, n=3, max_new_tokens=4)
    assert sampled == sample(model, tokenizer, QUESTIONS, n=3, max_new_tokens=4, temperature=1.0)
    assert sampled != sample(model, tokenizer, QUESTIONS, n=3, max_new_tokens=4, temperature=2.0)


def test_greedy_generate_without_early_exit_is_deterministic(tokenizer):
    model = build_model(len(tokenizer), seed=4)
    first = generate(model, tokenizer, QUESTIONS, max_new_tokens=6, early_exit=False)
    assert first == generate(model, tokenizer, QUESTIONS, max_new_tokens=6, early_exit=False)
    assert first == generate(model, tokenizer, QUESTIONS, max_new_tokens=6)


def test_by_default_finished_answers_leave_the_batch(tokenizer):
    """Raw prompts: after "?" the model says " Kuwait" and ends, after ":" it says " book the
    Kuwait" and ends; the first answer leaves the batch while the second goes on."""
    vocab = len(tokenizer)
    question, colon = (ids[-1] for ids in tokenizer(["Who?", "Answer:"])["input_ids"])
    kuwait, book, the = (tokenizer(w)["input_ids"][0] for w in (" Kuwait", " book", " the"))

    def says(token: int) -> torch.Tensor:
        logits = torch.zeros(vocab)
        logits[token] = MARGIN
        return logits

    chain = {question: kuwait, colon: book, book: the, the: kuwait, kuwait: tokenizer.eos_token_id}
    model = next_token_llama(vocab, {t: says(n) for t, n in chain.items()})
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    shapes = forward_shapes(model)
    prompts = ["Who?", "Answer:"]
    assert generate(model, tokenizer, prompts, raw_prompts=True, max_new_tokens=8) == [
        "Kuwait",
        "book the Kuwait",
    ]
    assert [rows for rows, _ in shapes[1:]] == [2, 1, 1]  # decoding steps after the prefill
    shapes.clear()
    generate(model, tokenizer, prompts, raw_prompts=True, max_new_tokens=8, early_exit=False)
    assert [rows for rows, _ in shapes[1:]] == [2, 2, 2]
