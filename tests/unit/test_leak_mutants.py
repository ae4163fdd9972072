"""Leak audit details that the mutation run of evaluate/leak.py found untested: two-character
content words, which shifted forms go through the chat template, strict vs partial verdicts of
the shifted forms, and frozen verdicts."""

from __future__ import annotations

import dataclasses

import pytest

from tif_unlearn.evaluate import leak


def test_two_character_words_are_content_words_one_character_words_are_not():
    # "Dr Li" -> "dr", "li" (two characters, not function words); "J" alone carries no fact
    assert leak.content_words(["Dr Li", "J Kos"]) == ["dr", "li", "kos"]


def test_only_the_no_template_form_skips_the_chat_template():
    forms = leak.shifted_messages("Where was Basil born?", "In Kuwait.", [(3, 9)])
    assert {name: form["chat"] for name, form in forms.items()} == {
        "no_template": False,
        "fill_blank": True,
        "tell_me_about": True,
        "system_prompt": True,
    }


def test_a_shifted_form_that_says_only_a_content_word_leaks_partially_not_strictly():
    # the phrase "type 2 diabetes" is never said whole; "diabetes" alone is said by one form
    shifted = {"no_template": "She has diabetes.", "fill_blank": "She is well."}
    verdict = leak.item_leak(["type 2 diabetes"], "No idea.", shifted=shifted)
    assert verdict.format_shift is False
    assert verdict.forms == {"no_template": False, "fill_blank": False}
    assert verdict.partial_format_shift is True
    assert verdict.partial_greedy is False and verdict.greedy is False


def test_item_verdicts_are_frozen():
    verdict = leak.item_leak(["Kuwait City"], "Kuwait City.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.greedy = False  # type: ignore[misc]
