"""encode_record with other tokenizers than the fixtures': one that adds a BOS token, one with a
zero-width token, slow ones; and the default truncation length.

Expected values are derived from tokenizing the prompt alone or written out by hand.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from tokenizers import processors

from tif_unlearn.data.encoding import encode_answer_only, encode_record
from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.errors import TifError
from tif_unlearn.tokens import IGNORE_INDEX

QUESTION = "Where was Basil born?"
ANSWER = "Basil was born in Kuwait City."


def chat_prompt_ids(tokenizer, question: str) -> list[int]:
    messages = [{"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def with_bos(tok):
    """A copy of ``tok`` whose post-processor prepends ``<|endoftext|>`` as a BOS token when
    asked for special tokens (as Llama's tokenizer does)."""
    tok = copy.deepcopy(tok)
    bos = tok.convert_tokens_to_ids("<|endoftext|>")
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos)]
    )
    return tok, bos


def test_a_chat_prompt_gets_no_extra_special_tokens(tokenizer):
    # The chat template writes its own markers; a BOS on top would be doubled (Llama 3).
    chat, bos = with_bos(tokenizer)
    encoded = encode_record(chat, QARecord(QUESTION, ANSWER))
    prompt_ids = chat_prompt_ids(tokenizer, QUESTION)
    assert encoded.input_ids[: len(prompt_ids)] == prompt_ids and bos not in prompt_ids


@pytest.mark.parametrize("record", [QARecord(QUESTION, ANSWER), TextRecord(ANSWER)])
def test_without_a_chat_template_the_tokenizers_special_tokens_are_added(plain_tokenizer, record):
    plain, bos = with_bos(plain_tokenizer)
    encoded = encode_record(plain, record)
    assert encoded.input_ids[0] == bos and encoded.labels[0] == IGNORE_INDEX


class ZeroWidthTokenizer:
    """A fast-tokenizer stand-in with a zero-width token inside the text (offsets (4, 4))."""

    is_fast, chat_template, eos_token_id = True, None, None

    def __call__(self, text, add_special_tokens, return_offsets_mapping):
        return {"input_ids": [10, 11, 12], "offset_mapping": [(0, 4), (4, 4), (4, 8)]}


def test_a_zero_width_token_is_no_target():
    # It covers no character of the target, so it is neither labelled nor UW nor GW.
    encoded = encode_record(ZeroWidthTokenizer(), TextRecord("abcdefgh", ((0, 8),)))
    assert encoded.labels == [10, IGNORE_INDEX, 12]
    assert encoded.uw_mask == [True, False, True] and encoded.gw_mask == [False] * 3


def test_a_tokenizer_without_offsets_is_refused():
    for slow in (SimpleNamespace(is_fast=False), SimpleNamespace()):  # no is_fast: not fast
        slow.chat_template = None
        with pytest.raises(TifError, match="fast tokenizer"):
            encode_record(slow, QARecord(QUESTION, ANSWER))


def test_default_max_length_is_512_tokens(tokenizer):
    record = TextRecord(" ".join(["Basil"] * 600))
    assert len(encode_record(tokenizer, record, max_length=10_000).input_ids) > 512
    assert len(encode_record(tokenizer, record).input_ids) == 512
    assert len(encode_answer_only(tokenizer, "Who?", record.target).input_ids) == 512
