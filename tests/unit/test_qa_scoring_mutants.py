"""`tif eval qa` model work (evaluate/qa_scoring.py) on planted models (tests/planted.py) whose
answers are known by hand: the UW/GW flags of scored tokens, how each prompt is rendered and
which are asked (greedy, sampled, shifted forms), one item's row, the MIA key and which sets
get the leak audit."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import CHAT_TEMPLATE, build_tokenizer
from planted import MARGIN, next_token_llama
from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.evaluate import qa_scoring
from tif_unlearn.evaluate.generation import sample
from tif_unlearn.evaluate.options import QAEvalOptions
from tif_unlearn.evaluate.qa_items import EvalSets, Item
from tif_unlearn.evaluate.scoring import ScoredAnswer

QUESTION = "Where was Basil born?"
ANSWER = "Basil was born in Kuwait City."
UW = ((18, 29),)  # "Kuwait City"


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def with_bos(chat_template: str | None):
    """The test tokenizer, adding "<|endoftext|>" in front of every text as a BOS (Llama-like)."""
    from tokenizers.processors import TemplateProcessing

    tokenizer = build_tokenizer(chat_template)
    bos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    tokenizer._tokenizer.post_processor = TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos)]
    )
    assert tokenizer("Who?")["input_ids"][0] == bos
    return tokenizer


def planted(tokenizer):
    """Says " Kuwait" after a chat prompt (which ends in "\\n"), " book" after a raw question
    (ending in "?") and " the" after the fallback prompt's "Answer:", then ends."""
    vocab = len(tokenizer)
    newline = ids(tokenizer, "assistant\n")[-1]
    question, colon = ids(tokenizer, QUESTION)[-1], ids(tokenizer, "Answer:")[-1]
    words = [ids(tokenizer, w) for w in (" Kuwait", " book", " the")]
    assert all(len(w) == 1 for w in words) and len({newline, question, colon}) == 3

    def says(token: int) -> torch.Tensor:
        logits = torch.zeros(vocab)
        logits[token] = MARGIN
        return logits

    eos = says(tokenizer.eos_token_id)
    logits = {None: eos, **{w[0]: eos for w in words}}
    for after, word in zip((newline, question, colon), words, strict=True):
        logits[after] = says(word[0])
    model = next_token_llama(vocab, logits)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def qa(spans=UW) -> Item:
    return Item(QARecord(QUESTION, ANSWER, spans), QUESTION, ANSWER, spans, is_text=False)


def text_item(truth: str = " book", spans=None) -> Item:
    record = TextRecord(QUESTION + truth, spans)
    return Item(record, QUESTION, truth, spans, is_text=True)


def test_target_masks_flag_the_scored_tokens(tokenizer):
    # "B asil was born in Kuwait Cit y ." then the end token; UW: "Kuwait Cit y"
    uw, gw = qa_scoring.target_masks(tokenizer, QARecord(QUESTION, ANSWER, UW), 512)
    assert uw == [False] * 5 + [True] * 3 + [False] * 2
    assert gw == [not u for u in uw]
    # a text: every token but the first is scored; the UW span moves with the text
    uw, gw = qa_scoring.target_masks(tokenizer, TextRecord(ANSWER, UW), 512)
    assert uw == [False] * 4 + [True] * 3 + [False]
    assert gw == [not u for u in uw]


def test_render_prompt(tokenizer, plain_tokenizer):
    def chat(user, system=None):
        return (f"<|im_start|>system\n{system}<|im_end|>\n" if system else "") + (
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        )

    assert "<|im_start|>assistant\n" in CHAT_TEMPLATE
    form = {"system": None, "user": "Q?", "chat": True}
    assert qa_scoring.render_prompt(tokenizer, form) == (chat("Q?"), False)
    assert qa_scoring.render_prompt(tokenizer, form | {"system": "S"}) == (chat("Q?", "S"), False)
    fallback = "Question: Q?\nAnswer:"
    assert qa_scoring.render_prompt(tokenizer, form | {"chat": False}) == (fallback, True)
    no_template = qa_scoring.render_prompt(plain_tokenizer, form | {"system": "S"})
    assert no_template == ("S\n" + fallback, True)


def test_answer_length_is_max_new_tokens_for_answers_and_the_truth_for_windows():
    tokenizer = with_bos(None)  # special tokens would count one more
    options = QAEvalOptions(max_new_tokens=7)
    assert qa_scoring.answer_length(tokenizer, [], options) == 7
    assert qa_scoring.answer_length(tokenizer, [qa()], options) == 7
    assert len(ids(tokenizer, " book book")) == 2
    windows = [text_item(" book book"), text_item(" book")]
    assert qa_scoring.answer_length(tokenizer, windows, options) == 2
    assert qa_scoring.answer_length(tokenizer, windows[1:], options) == 1


def test_greedy_answers_chat_for_questions_raw_for_windows(tokenizer):
    model = planted(tokenizer)
    options = QAEvalOptions(max_new_tokens=4)
    assert qa_scoring.greedy_answers(model, tokenizer, [qa()], options) == ["Kuwait"]
    assert qa_scoring.greedy_answers(model, tokenizer, [text_item()], options) == ["book"]


def test_sampled_answers_only_for_items_that_can_leak(tokenizer):
    model = planted(tokenizer)
    options = QAEvalOptions(max_new_tokens=4, leak_samples=2)
    answers = qa_scoring.sampled_answers(model, tokenizer, [qa(), qa(spans=None)], options)
    assert answers == [["Kuwait", "Kuwait"], []]
    spans = ((0, 5),)  # " book" of the truth
    assert qa_scoring.sampled_answers(model, tokenizer, [text_item(spans=spans)], options) == [
        ["book", "book"]
    ]
    none = QAEvalOptions(max_new_tokens=4, leak_samples=0)
    assert qa_scoring.sampled_answers(model, tokenizer, [qa(), qa()], none) == [[], []]
    assert qa_scoring.sampled_answers(model, tokenizer, [qa(None)], options) == [[]]


def test_samples_are_drawn_four_scoring_batches_at_a_time(tokenizer):
    """Seeded samples depend on how prompts are batched: 3 samples, batch size 2 -> 8 rows,
    2 prompts a batch (10 rows would hold 3)."""
    spread = 4 * torch.randn(len(tokenizer), generator=torch.Generator().manual_seed(0))
    model = next_token_llama(len(tokenizer), {None: spread})
    items = [qa(), qa(), qa()]
    options = QAEvalOptions(max_new_tokens=3, leak_samples=3, batch_size=2, seed=4)
    got = qa_scoring.sampled_answers(model, tokenizer, items, options)
    kwargs = dict(n=3, seed=4, max_new_tokens=3)
    assert got == sample(model, tokenizer, [QUESTION] * 3, batch_size=8, **kwargs)
    assert got != sample(model, tokenizer, [QUESTION] * 3, batch_size=10, **kwargs)


def test_shifted_forms_are_asked_as_rendered_with_special_tokens_only_outside_chat():
    tokenizer = with_bos(CHAT_TEMPLATE)
    bos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model = planted(tokenizer)
    prompts: list[list[int]] = []

    def prefill(_module, _args, kwargs):
        input_ids, mask = kwargs["input_ids"], kwargs.get("attention_mask")
        if input_ids.shape[1] > 1:
            mask = torch.ones_like(input_ids) if mask is None else mask[:, -input_ids.shape[1] :]
            prompts.extend(
                row[keep.bool()].tolist() for row, keep in zip(input_ids, mask, strict=True)
            )

    model.register_forward_pre_hook(prefill, with_kwargs=True)
    options = QAEvalOptions(max_new_tokens=4)
    out = qa_scoring.shifted_answers(model, tokenizer, [qa(), qa(spans=None)], options)
    # the fallback prompt ends in "Answer:", the chat-rendered ones in "assistant\n"
    assert out == [
        {"no_template": "the", "fill_blank": "Kuwait", "tell_me_about": "Kuwait"}
        | {"system_prompt": "Kuwait"},
        {},
    ]
    fallback = [bos, *ids(tokenizer, f"Question: {QUESTION}\nAnswer:")]
    assert fallback in prompts
    chat = [p for p in prompts if p != fallback]
    assert len(chat) == 3 and all(p[0] != bos for p in chat)
    rendered = [tokenizer.decode(p) for p in chat]
    assert all(
        r.startswith("<|im_start|>") and r.count("<|im_start|>assistant") == 1 for r in rendered
    )
    assert qa_scoring.shifted_answers(model, tokenizer, [qa()], options)[0]["tell_me_about"]
    off = QAEvalOptions(max_new_tokens=4, format_shift=False)
    assert qa_scoring.shifted_answers(model, tokenizer, [qa()], off) == [{}]
    windows = [text_item(spans=((0, 5),))]
    assert qa_scoring.shifted_answers(model, tokenizer, windows, options) == [{}]
    assert qa_scoring.shifted_answers(model, tokenizer, [], options) == []


def test_item_row_numbers():
    scored = ScoredAnswer([-1.0, -3.0], [0, 0], [1, 2])
    answers = {"greedy": "It was Kuwait City.", "sampled": [], "shifted": {}}
    row = qa_scoring.item_row(qa(), scored, ([True, False], [False, True]), answers, 0.4)
    assert row["answer_prob"] == pytest.approx(math.exp(-2))
    assert row["uw_prob"] == pytest.approx(math.exp(-1))
    assert row["gw_prob"] == pytest.approx(math.exp(-3))
    assert row["min_k"] == pytest.approx(3.0)  # the lowest one of two tokens
    assert row["avg_nll"] == pytest.approx(2.0)
    assert row["leak"]["greedy"] is True and row["leak"]["words"] == ["Kuwait City"]
    empty = ScoredAnswer([], [], [])
    plain = qa_scoring.item_row(qa(None), empty, ([], []), answers, 0.4)
    assert plain["leak"] is None and plain["min_k"] is None and plain["uw_prob"] is None


def test_mia_names_the_min_k_auc_by_its_percent():
    rows = [{"min_k": 1.0, "avg_nll": 1.0}, {"min_k": None, "avg_nll": 2.0}]
    holdout = [ScoredAnswer([-5.0, -5.0], [0, 0], [1, 1])]
    assert qa_scoring.mia(rows, holdout, 0.9) == {"min_90_auc": 1.0, "loss_auc": 1.0}
    assert set(qa_scoring.mia(rows, holdout, 0.4)) == {"min_40_auc", "loss_auc"}


def test_evaluate_model_audits_the_forget_set_only(tokenizer):
    model = planted(tokenizer)
    options = QAEvalOptions(max_new_tokens=4, leak_samples=1, format_shift=False)
    sets = EvalSets(forget=[qa()], retain=[qa()], holdout=[qa()], utility=[qa()])
    out = qa_scoring.evaluate_model(model, tokenizer, sets, options)
    assert set(out) == {"forget", "retain", "utility", "mia"}
    assert out["forget"][0]["sampled"] == ["Kuwait"]
    assert out["retain"][0]["sampled"] == [] and out["retain"][0]["leak"] is not None
    assert out["utility"][0]["correct"] is False and "leak" not in out["utility"][0]
    assert set(out["mia"]) == {"min_40_auc", "loss_auc"}
    plain = qa_scoring.evaluate_model(model, tokenizer, EvalSets(forget=[qa()]), options)
    assert set(plain) == {"forget"}


def test_mean_prob_refuses_a_mask_of_another_length():
    assert qa_scoring.mean_prob([math.log(0.5), math.log(0.25)], [True, True]) == 0.375
    with pytest.raises(ValueError):
        qa_scoring.mean_prob([-1.0, -2.0], [True])
