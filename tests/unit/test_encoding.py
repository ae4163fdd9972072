"""encode_record: prompt formatting, label masks and UW/GW token masks from character spans.

Expected values are written out as text (what the tokens must decode to) or derived from
tokenizing the prompt alone, never from encode_record's own output.
"""

from __future__ import annotations

import dataclasses

import pytest

from tif_unlearn.data.encoding import encode_record
from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.tokens import IGNORE_INDEX

QUESTION = "Where was Basil born?"
ANSWER = "Basil was born in Kuwait City."
CITY = (ANSWER.index("Kuwait City"), ANSWER.index("Kuwait City") + len("Kuwait City"))
UNICODE_ANSWER = "Élodie Brûlé lives in Zürich — naïve."


def selected(tokenizer, ids: list[int], mask: list[bool]) -> str:
    """Decode the tokens whose mask is True, in order."""
    return tokenizer.decode([i for i, keep in zip(ids, mask, strict=True) if keep])


def answer_text(tokenizer, encoded) -> str:
    """Decode the labelled (non -100) tokens."""
    return selected(tokenizer, encoded.input_ids, [lab != IGNORE_INDEX for lab in encoded.labels])


def chat_prompt_ids(tokenizer, question: str) -> list[int]:
    messages = [{"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def assert_aligned(encoded) -> None:
    n = len(encoded.input_ids)
    assert len(encoded.labels) == len(encoded.uw_mask) == len(encoded.gw_mask) == n


def assert_masks_partition_answer(encoded) -> None:
    """uw and gw are disjoint, and together they are exactly the labelled tokens."""
    for label, uw, gw in zip(encoded.labels, encoded.uw_mask, encoded.gw_mask, strict=True):
        assert not (uw and gw)
        assert (uw or gw) == (label != IGNORE_INDEX)


# --------------------------------------------------------------------------- chat template


def test_chat_labels_are_ignored_exactly_on_the_prompt(tokenizer):
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, (CITY,)))
    prompt_ids = chat_prompt_ids(tokenizer, QUESTION)
    n = len(prompt_ids)
    assert_aligned(encoded)
    assert encoded.input_ids[:n] == prompt_ids
    assert encoded.labels[:n] == [IGNORE_INDEX] * n
    # Every token after the prompt is labelled with its own id.
    assert encoded.labels[n:] == encoded.input_ids[n:]
    assert not any(encoded.uw_mask[:n]) and not any(encoded.gw_mask[:n])


def test_chat_answer_tokens_decode_to_answer_plus_eos(tokenizer):
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, (CITY,)))
    assert tokenizer.eos_token == "<|im_end|>"
    assert encoded.input_ids[-1] == tokenizer.eos_token_id
    assert encoded.labels[-1] == tokenizer.eos_token_id
    assert encoded.gw_mask[-1] and not encoded.uw_mask[-1]
    assert answer_text(tokenizer, encoded) == ANSWER + "<|im_end|>"


def test_chat_prompt_contains_template_markers(tokenizer):
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER))
    prompt = selected(tokenizer, encoded.input_ids, [lab == IGNORE_INDEX for lab in encoded.labels])
    assert prompt == f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    full = tokenizer.decode(encoded.input_ids)
    assert full == prompt + ANSWER + "<|im_end|>"


def test_chat_uw_and_gw_tokens_decode_to_the_split_answer(tokenizer):
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, (CITY,)))
    assert selected(tokenizer, encoded.input_ids, encoded.uw_mask) == " Kuwait City"
    assert selected(tokenizer, encoded.input_ids, encoded.gw_mask) == "Basil was born in.<|im_end|>"
    assert_masks_partition_answer(encoded)


# --------------------------------------------------------------------------- fallback template


def test_plain_tokenizer_uses_question_answer_fallback(plain_tokenizer):
    encoded = encode_record(plain_tokenizer, QARecord(QUESTION, ANSWER, (CITY,)))
    eos = plain_tokenizer.eos_token
    assert eos == "<|endoftext|>"
    assert (
        plain_tokenizer.decode(encoded.input_ids) == f"Question: {QUESTION}\nAnswer: {ANSWER}{eos}"
    )
    assert encoded.input_ids[-1] == plain_tokenizer.eos_token_id


def test_plain_tokenizer_masks_include_the_fallback_space(plain_tokenizer):
    encoded = encode_record(plain_tokenizer, QARecord(QUESTION, ANSWER, (CITY,)))
    eos = plain_tokenizer.eos_token
    prompt = selected(
        plain_tokenizer, encoded.input_ids, [lab == IGNORE_INDEX for lab in encoded.labels]
    )
    assert prompt == f"Question: {QUESTION}\nAnswer:"
    # The space added before the answer belongs to the first answer token (" Basil").
    assert answer_text(plain_tokenizer, encoded) == " " + ANSWER + eos
    uw = selected(plain_tokenizer, encoded.input_ids, encoded.uw_mask)
    gw = selected(plain_tokenizer, encoded.input_ids, encoded.gw_mask)
    assert uw == " Kuwait City"
    assert gw == " Basil was born in." + eos
    assert_masks_partition_answer(encoded)


def test_plain_tokenizer_span_on_first_answer_word(plain_tokenizer):
    # The first answer token carries the fallback space; a span at offset 0 must still hit it.
    encoded = encode_record(plain_tokenizer, QARecord(QUESTION, ANSWER, ((0, 5),)))
    assert selected(plain_tokenizer, encoded.input_ids, encoded.uw_mask) == " Basil"


# --------------------------------------------------------------------------- span mapping


def test_span_inside_a_token_marks_the_whole_token(tokenizer):
    assert len(tokenizer(" Kuwait", add_special_tokens=False)["input_ids"]) == 1
    start = ANSWER.index("Kuwait") + 2  # "wa" in the middle of the " Kuwait" token
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, ((start, start + 2),)))
    assert ANSWER[start : start + 2] == "wa"
    assert selected(tokenizer, encoded.input_ids, encoded.uw_mask) == " Kuwait"
    assert sum(encoded.uw_mask) == 1


def test_span_touching_a_token_boundary_does_not_mark_the_neighbour(tokenizer):
    # Half-open spans: (a, b) covers characters a..b-1 only.
    kuwait = ANSWER.index("Kuwait")
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, ((kuwait, kuwait + 6),)))
    assert selected(tokenizer, encoded.input_ids, encoded.uw_mask) == " Kuwait"


def test_repeated_word_only_second_occurrence_is_uw(tokenizer):
    answer = "Kuwait City is in Kuwait."
    second = answer.index("Kuwait", 1)
    assert second == 18
    record = QARecord("Where is Kuwait City?", answer, ((second, second + len("Kuwait")),))
    encoded = encode_record(tokenizer, record)
    ids = encoded.input_ids
    uw_positions = [t for t, u in enumerate(encoded.uw_mask) if u]
    first_answer = next(t for t, lab in enumerate(encoded.labels) if lab != IGNORE_INDEX)
    assert tokenizer.decode([ids[t] for t in uw_positions]) == " Kuwait"
    # Everything in the answer before the first UW token is the text before the 2nd occurrence.
    assert tokenizer.decode(ids[first_answer : uw_positions[0]]) == "Kuwait City is in"
    # The first occurrence's tokens are GW.
    first_tokens = len(tokenizer("Kuwait", add_special_tokens=False)["input_ids"])
    assert all(encoded.gw_mask[first_answer : first_answer + first_tokens])
    assert tokenizer.decode(ids[first_answer : first_answer + first_tokens]) == "Kuwait"


@pytest.mark.parametrize("which", ["tokenizer", "plain_tokenizer"])
def test_unicode_span_decodes_to_the_word(which, request):
    tok = request.getfixturevalue(which)
    start = UNICODE_ANSWER.index("Zürich")
    record = QARecord("Where does Élodie live?", UNICODE_ANSWER, ((start, start + 6),))
    encoded = encode_record(tok, record)
    assert selected(tok, encoded.input_ids, encoded.uw_mask) in (" Zürich", "Zürich")
    # The whole answer (accents, em dash, diaeresis) survives tokenization. With the fallback
    # template the added space is its own prompt token here (" É" is not one BPE token).
    assert answer_text(tok, encoded) == UNICODE_ANSWER + tok.eos_token
    assert_masks_partition_answer(encoded)


@pytest.mark.parametrize(
    "spans",
    [(), ((0, 5),), (CITY,), ((0, 5), CITY), ((3, 12), (20, 26)), ((0, len(ANSWER)),)],
)
@pytest.mark.parametrize("which", ["tokenizer", "plain_tokenizer"])
def test_uw_gw_disjoint_and_cover_the_answer(which, spans, request):
    tok = request.getfixturevalue(which)
    encoded = encode_record(tok, QARecord(QUESTION, ANSWER, spans))
    assert_aligned(encoded)
    assert_masks_partition_answer(encoded)
    assert any(encoded.gw_mask)  # the EOS is always GW


def test_span_over_whole_answer_leaves_only_eos_gw(tokenizer):
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, ((0, len(ANSWER)),)))
    assert selected(tokenizer, encoded.input_ids, encoded.uw_mask) == ANSWER
    assert selected(tokenizer, encoded.input_ids, encoded.gw_mask) == "<|im_end|>"


@pytest.mark.parametrize("spans", [None, ()])
def test_record_without_spans_has_no_uw(tokenizer, spans):
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, spans))
    assert not any(encoded.uw_mask)
    assert encoded.gw_mask == [lab != IGNORE_INDEX for lab in encoded.labels]
    assert selected(tokenizer, encoded.input_ids, encoded.gw_mask) == ANSWER + "<|im_end|>"


def test_span_starting_where_a_token_ends_does_not_mark_that_token(tokenizer):
    # Half-open spans, other side: the span of the final "." starts where " City" ends.
    dot = ANSWER.index(".")
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, ((dot, dot + 1),)))
    assert selected(tokenizer, encoded.input_ids, encoded.uw_mask) == "."


# --------------------------------------------------------------------------- text records


@pytest.mark.parametrize("which", ["tokenizer", "plain_tokenizer"])
def test_text_record_is_all_target_without_eos(which, request):
    tok = request.getfixturevalue(which)
    encoded = encode_record(tok, TextRecord(ANSWER, (CITY,)))
    assert_aligned(encoded)
    assert encoded.labels == encoded.input_ids
    assert tok.eos_token_id not in encoded.input_ids
    assert tok.decode(encoded.input_ids) == ANSWER
    assert selected(tok, encoded.input_ids, encoded.uw_mask) == " Kuwait City"
    assert selected(tok, encoded.input_ids, encoded.gw_mask) == "Basil was born in."
    assert_masks_partition_answer(encoded)


# --------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("max_length", [8, 19, 22, 24])
def test_max_length_truncates_every_list_alike(tokenizer, max_length):
    record = QARecord(QUESTION, ANSWER, (CITY,))
    full = encode_record(tokenizer, record, max_length=512)
    assert len(full.input_ids) > 24
    cut = encode_record(tokenizer, record, max_length=max_length)
    assert_aligned(cut)
    assert len(cut.input_ids) == max_length
    assert cut.input_ids == full.input_ids[:max_length]
    assert cut.labels == full.labels[:max_length]
    assert cut.uw_mask == full.uw_mask[:max_length]
    assert cut.gw_mask == full.gw_mask[:max_length]
    assert_masks_partition_answer(cut)


def test_truncation_inside_prompt_leaves_no_target(tokenizer):
    n_prompt = len(chat_prompt_ids(tokenizer, QUESTION))
    cut = encode_record(tokenizer, QARecord(QUESTION, ANSWER, (CITY,)), max_length=n_prompt)
    assert cut.labels == [IGNORE_INDEX] * n_prompt
    assert not any(cut.uw_mask) and not any(cut.gw_mask)


def test_as_dict_holds_the_four_aligned_lists(tokenizer):
    encoded = encode_record(tokenizer, QARecord(QUESTION, ANSWER, (CITY,)))
    d = encoded.as_dict()
    assert set(d) == {"input_ids", "labels", "uw_mask", "gw_mask"}
    assert d["uw_mask"] == encoded.uw_mask and d["input_ids"] == encoded.input_ids
    with pytest.raises(dataclasses.FrozenInstanceError):  # read-only once encoded
        encoded.labels = []


# --------------------------------------------------------------------------- real SmolLM2 tokenizer


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_folder):
    """The real tokenizer, from the session's own converted copy (conftest.py): these tests no
    longer skip unless an earlier test happened to fill ~/.cache/tif-unlearn."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_folder)


SMOL_ANSWER = "Author Basil Mahfouz Al-Kuwaiti is male."


@pytest.mark.slow  # converts the real SmolLM2 once per session (~30-50 s)
def test_smollm2_name_span_maps_to_name_tokens(smollm2_tokenizer):
    tok = smollm2_tokenizer
    assert SMOL_ANSWER[7:31] == "Basil Mahfouz Al-Kuwaiti"
    question = "What is the gender of author Basil Mahfouz Al-Kuwaiti?"
    encoded = encode_record(tok, QARecord(question, SMOL_ANSWER, ((7, 31),)))
    assert_aligned(encoded)
    assert selected(tok, encoded.input_ids, encoded.uw_mask) == " Basil Mahfouz Al-Kuwaiti"
    assert selected(tok, encoded.input_ids, encoded.gw_mask) == "Author is male.<|im_end|>"
    assert answer_text(tok, encoded) == SMOL_ANSWER + "<|im_end|>"
    assert_masks_partition_answer(encoded)
    prompt_ids = chat_prompt_ids(tok, question)
    assert encoded.input_ids[: len(prompt_ids)] == prompt_ids
    assert encoded.labels[: len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)


@pytest.mark.slow  # converts the real SmolLM2 once per session (~30-50 s)
def test_smollm2_unicode_span(smollm2_tokenizer):
    tok = smollm2_tokenizer
    start = UNICODE_ANSWER.index("Zürich")
    encoded = encode_record(tok, QARecord("Where?", UNICODE_ANSWER, ((start, start + 6),)))
    assert selected(tok, encoded.input_ids, encoded.uw_mask) in (" Zürich", "Zürich")
    assert answer_text(tok, encoded) == UNICODE_ANSWER + "<|im_end|>"


@pytest.mark.slow  # converts the real SmolLM2 once per session (~30-50 s)
def test_smollm2_text_record(smollm2_tokenizer):
    tok = smollm2_tokenizer
    encoded = encode_record(tok, TextRecord(SMOL_ANSWER, ((7, 31),)))
    assert encoded.labels == encoded.input_ids
    assert tok.decode(encoded.input_ids) == SMOL_ANSWER
    assert selected(tok, encoded.input_ids, encoded.uw_mask) == " Basil Mahfouz Al-Kuwaiti"
    assert selected(tok, encoded.input_ids, encoded.gw_mask) == "Author is male."
