"""Chat templates that print today's date (Llama 3) give the same prompt on every day: training
prompts, evaluation prompts and the local LLM identifier's prompts all carry one pinned date."""

from __future__ import annotations

import pytest

from conftest import build_tokenizer
from tif_unlearn.data.encoding import format_prompt
from tif_unlearn.evaluate.generation import chat_prompt
from tif_unlearn.evaluate.qa_scoring import render_prompt
from tif_unlearn.identify.llm_backends import HFChatBackend

# Llama 3.2's own lines: date_string if the caller gives one, else today through strftime_now.
LLAMA32_DATE = (
    "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
    '{%- set date_string = strftime_now("%d %b %Y") %}{%- else %}'
    '{%- set date_string = "26 Jul 2024" %}{%- endif %}{%- endif %}'
    "Today Date: {{ date_string }}\n"
)
STRFTIME_ONLY = 'Date: {{ strftime_now("%Y-%m-%d") }}\n'
TURNS = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
EXPECTED = {"llama32": "Today Date: 26 Jul 2024", "strftime": "Date: 2024-07-26"}


@pytest.fixture(scope="module", params=["llama32", "strftime"])
def dated(request):
    header = LLAMA32_DATE if request.param == "llama32" else STRFTIME_ONLY
    return build_tokenizer(header + TURNS), EXPECTED[request.param]


def test_training_prompt_has_the_pinned_date(dated):
    tokenizer, expected = dated
    prompt, _ = format_prompt(tokenizer, "Where was Basil born?")
    assert expected in prompt and "Where was Basil born?" in prompt


def test_evaluation_prompts_have_the_pinned_date(dated, tiny_model):
    tokenizer, expected = dated
    assert expected in chat_prompt(tokenizer, "Q?")
    form = {"chat": True, "user": "Q?", "system": "Be brief."}
    assert expected in render_prompt(tokenizer, form)[0]
    assert expected in HFChatBackend(tiny_model, tokenizer)._render("Q?")


def test_training_and_evaluation_prompts_are_the_same(dated):
    tokenizer, _ = dated
    assert chat_prompt(tokenizer, "Q?") == format_prompt(tokenizer, "Q?")[0]


def test_without_transformers_clock_hook_date_string_still_pins_llama_templates(
    tokenizer, monkeypatch
):
    # Another transformers layout: its chat-template module has no ``datetime`` to replace.
    from transformers.utils import chat_template_utils as templates

    monkeypatch.delattr(templates, "datetime")
    monkeypatch.setattr(tokenizer, "chat_template", LLAMA32_DATE + TURNS)
    prompt, _ = format_prompt(tokenizer, "Where was Basil born?")
    assert EXPECTED["llama32"] in prompt
