"""The degeneration check of generated answers (evaluate/qa_fluency.py) on hand-made strings:
"forgot by babbling" (NPO's `Dr. . . . . .`, `VVVVVVVV`) is flagged, a stutter is not."""

from __future__ import annotations

import pytest

from tif_unlearn.evaluate.qa_fluency import fluency, fluency_summary, is_non_word


def test_dots_are_repetition_and_non_words():
    verdict = fluency("Dr. . . . . .")
    # pieces: dr. . . . . .  -> 4 of the 5 pieces after the first repeat the one before;
    # 5 of the 6 pieces have no letter or digit
    assert verdict.repetition == pytest.approx(4 / 5)
    assert verdict.non_word == pytest.approx(5 / 6)
    assert verdict.degenerate is True


def test_a_run_of_one_letter_is_not_a_word():
    verdict = fluency("VVVVVVVVVVVV")
    assert (verdict.repetition, verdict.non_word, verdict.degenerate) == (0.0, 1.0, True)
    assert is_non_word("VVVV") and not is_non_word("VVV") and not is_non_word("Mississippi")
    assert not is_non_word("555-0142") and not is_non_word("mquennix@fern")


def test_a_loop_of_word_pairs_is_repetition():
    # of the | of the | of the: pairs (of,the) (the,of) (of,the)* (the,of)* (of,the)* -> 3 / 5
    assert fluency("of the of the of the").repetition == pytest.approx(3 / 5)
    assert fluency("of the of the of the").degenerate is True
    looping = fluency("He was born in Paris. He was born in Paris. He was born in Paris.")
    assert looping.repetition == pytest.approx(9 / 14) and looping.degenerate is True


def test_a_stutter_or_a_plain_answer_is_language():
    stutter = fluency("takes insulin insulin every evening")
    # one piece of four repeats the one before it: 1 / 4
    assert stutter.repetition == pytest.approx(0.25) and stutter.non_word == 0.0
    assert stutter.degenerate is False
    plain = fluency("The Mona Lisa was painted by Lisa Carti.")
    assert (plain.repetition, plain.non_word, plain.degenerate) == (0.0, 0.0, False)


def test_an_empty_answer_is_degenerate():
    assert fluency("  \n").degenerate is True and fluency("").non_word == 1.0


def test_summary_means_and_share_of_degenerate_answers():
    rows = [
        {"repetition": 0.8, "non_word": 0.5, "degenerate": True},
        {"repetition": 0.0, "non_word": 0.0, "degenerate": False},
        None,
    ]
    # repetition (0.8 + 0) / 2, non-word (0.5 + 0) / 2, degenerate 1 of 2
    assert fluency_summary(rows) == {
        "repetition": pytest.approx(0.4),
        "non_word": pytest.approx(0.25),
        "degenerate": 0.5,
    }
    assert fluency_summary([None])["degenerate"] is None
