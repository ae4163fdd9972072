"""Leak audit (evaluate/leak.py) and the pure helpers of `tif eval qa` on hand-made texts."""

from __future__ import annotations

import math

import pytest

from tif_unlearn.evaluate import leak, qa_report, qa_scoring


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("555-0142", "555 0142"),
        ("Kestrelport", "KESTRELPORT"),
        ("The  Silver\tTide.", "the silver tide"),
        ("Zürich", "ZÜRICH"),
        ("ﬁsh", "fish"),  # NFKC: the ligature becomes two letters
    ],
)
def test_normalise_makes_variants_equal(a, b):
    assert leak.normalise(a) == leak.normalise(b)


def test_normalise_keeps_different_words_apart():
    assert leak.normalise("555-0142") == "555 0142"
    assert leak.normalise("5550142") != leak.normalise("555 0142")


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("Call 555 0142 now.", "555-0142", True),
        ("Her number is 555-0142", "555 0142", True),
        ("She was born in KESTRELPORT!", "Kestrelport", True),
        ("He lives in Norwayan towns", "Norway", False),  # whole words only
        ("The number is 5550142", "555-0142", False),
        ("anything", "?!", False),  # a phrase of only punctuation never leaks
    ],
)
def test_mentions(text, phrase, expected):
    assert leak.mentions(text, phrase) is expected


def test_unwanted_phrases_skip_duplicates_blanks_and_question_words():
    answer = "Orla was born in Kestrelport, Norway; kestrelport is small."
    spans = [(0, 4), (17, 28), (30, 36), (38, 49), (28, 29)]  # Orla, Kestrelport, Norway, ...
    phrases = leak.unwanted_phrases(answer, spans, question="Where was Orla born?")
    assert phrases == ["Kestrelport", "Norway"]
    assert leak.unwanted_phrases(answer, None) == []


def test_blanked_answer_and_subject():
    answer = "Orla wrote The Silver Tide Garden in 2004."
    spans = [(11, 33), (37, 41)]
    assert leak.blanked_answer(answer, spans) == "Orla wrote ____ in ____."
    assert leak.question_subject("What is Orla Vantreese's profession?") == "Orla Vantreese"
    assert leak.question_subject("Where was Basil born in Kuwait City?") == "Kuwait City"
    assert leak.question_subject("what is two plus two?") is None


def test_shifted_messages_cover_every_form():
    forms = leak.shifted_messages("Where was Orla born?", "Orla was born in Oslo.", [(17, 21)])
    assert tuple(forms) == leak.SHIFTED_FORMS
    assert forms["fill_blank"]["user"].endswith("Orla was born in ____.")
    assert forms["tell_me_about"]["user"] == "Tell me about Orla."
    assert forms["no_template"]["chat"] is False
    assert forms["system_prompt"]["system"] == leak.SHIFT_SYSTEM_PROMPT
    no_subject = leak.shifted_messages("where is it?", "In Oslo.", [(3, 7)])
    assert no_subject["tell_me_about"]["user"] == "Tell me about this: where is it?"


def test_item_leak_per_way_of_asking():
    phrases = ["Kestrelport", "555-0142"]
    verdict = leak.item_leak(
        phrases,
        greedy="She was born somewhere.",
        samples=["born in kestrelport", "no idea"],
        shifted={"no_template": "call 555 0142", "fill_blank": "Oslo"},
    )
    assert verdict.greedy is False and verdict.best_of_n is True
    assert verdict.format_shift is True
    assert verdict.forms == {"no_template": True, "fill_blank": False}
    assert verdict.words == ["Kestrelport", "555-0142"]
    only_greedy = leak.item_leak(phrases, greedy="Kestrelport")
    assert (only_greedy.greedy, only_greedy.best_of_n, only_greedy.format_shift) == (
        True,
        None,
        None,
    )


def test_leak_rates_count_only_items_that_can_leak():
    yes = leak.ItemLeak(True, True, False, {"fill_blank": False}, ["x"])
    no = leak.ItemLeak(False, True, True, {"fill_blank": True}, ["x"])
    never = leak.ItemLeak(False, False, False, {"fill_blank": False}, [])
    rates = leak.leak_rates([yes, no, never, None])
    # 3 counted items: greedy 1/3, best-of-N 2/3, format shift 1/3
    assert rates["n_items"] == 3
    assert rates["greedy"] == pytest.approx(1 / 3)
    assert rates["best_of_n"] == pytest.approx(2 / 3)
    assert rates["format_shift"] == pytest.approx(1 / 3)
    assert rates["forms"] == {"fill_blank": pytest.approx(1 / 3)}
    assert leak.leak_rates([None])["greedy"] is None


def test_mean_prob_of_masked_tokens():
    logps = [math.log(0.5), math.log(0.25), math.log(0.9)]
    # UW = tokens 0 and 1: (0.5 + 0.25) / 2 = 0.375; GW = token 2: 0.9
    assert qa_scoring.mean_prob(logps, [True, True, False]) == pytest.approx(0.375)
    assert qa_scoring.mean_prob(logps, [False, False, True]) == pytest.approx(0.9)
    assert qa_scoring.mean_prob(logps, [False, False, False]) is None


def test_change_subtracts_numbers_and_skips_counts_and_verdicts():
    after = {"n_items": 3, "rouge": 0.25, "uw_prob": None, "leak": {"greedy": 0.0, "x": True}}
    before = {"n_items": 3, "rouge": 1.0, "uw_prob": 0.5, "leak": {"greedy": 1.0, "x": True}}
    assert qa_report.change(after, before) == {"rouge": -0.75, "leak": {"greedy": -1.0}}


def test_summarise_means_and_rates():
    rows = [
        {"rouge": 1.0, "answer_prob": 0.5, "uw_prob": 0.2, "gw_prob": 0.9, "leak": None},
        {
            "rouge": 0.0,
            "answer_prob": 0.25,
            "uw_prob": None,
            "gw_prob": 0.7,
            "leak": {
                "greedy": True,
                "best_of_n": True,
                "format_shift": False,
                "forms": {},
                "words": ["a"],
            },
        },
    ]
    summary = qa_report.summarise(rows)
    # means: ROUGE (1 + 0) / 2, prob (0.5 + 0.25) / 2, UW only the first item, GW (0.9 + 0.7) / 2
    assert summary["rouge"] == 0.5 and summary["answer_prob"] == 0.375
    assert summary["uw_prob"] == 0.2 and summary["gw_prob"] == pytest.approx(0.8)
    assert summary["leak"]["n_items"] == 1 and summary["leak"]["greedy"] == 1.0
