"""Did the model stop answering the questions? A cross-answer degeneration check: a model can
"forget" by giving one fluent sentence to every question (NPO in the demo: every question about
the person answered with a sentence on "the Columbus voyage"). Each answer looks like language,
so the per-answer check of :mod:`qa_fluency` passes; only the answers side by side show it.

- Two answers are *near-duplicates* when the ROUGE-L F1 of their words (letters and digits,
  case folded) reaches :data:`NEAR_DUPLICATE_AT`: 2·LCS / (|a| + |b|) ≥ 0.8, i.e. at most about
  one word in five differs. Two empty answers are duplicates of each other.
- An answer is *copied* when a near-duplicate of it answers a different question (questions
  compared case folded, outer whitespace stripped; answers to the same question never count).
- The *duplicate share* of a set is the share of its answers that are copied.
- A set's answers have *collapsed* when the duplicate share reaches :data:`COLLAPSED_AT` and,
  when the reference (before) model's share is known, exceeds it by at least
  :data:`COLLAPSE_MARGIN` (a data set whose true answers share a template is not flagged for
  keeping it).

Why these numbers: different facts asked about one person share a few words ("Her phone number
is 0181 555 0447." / "Her birthday is 3 March 1979.": F1 4/13 = 0.31; two addresses on the same
street differing in number and town: 0.75), while a collapsed model repeats itself word for
word or up to one word (F1 ≥ 0.8). Half the answers copied means the answer no longer depends
on the question for most of them; a fine-tuned model that recites its data scores 0.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

NEAR_DUPLICATE_AT = 0.8
COLLAPSED_AT = 0.5
COLLAPSE_MARGIN = 0.25
_WORD = re.compile(r"[^\W_]+")


def answer_words(text: str) -> tuple[str, ...]:
    """The words of ``text`` (runs of letters and digits), case folded."""
    return tuple(_WORD.findall(text.casefold()))


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def word_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """ROUGE-L F1 of two word sequences, 2·LCS / (|a| + |b|); two empty ones: 1.0."""
    if not a and not b:
        return 1.0
    return 2 * _lcs(a, b) / (len(a) + len(b))


def _could_reach(a: tuple, b: tuple, counts_a: Counter, counts_b: Counter) -> bool:
    """Cheap upper bounds first: LCS ≤ the shorter length; ≤ a length less the distinct words
    of that side the other lacks (one set intersection); ≤ the words in common as multisets."""
    total = len(a) + len(b)
    if total == 0:
        return True
    need = NEAR_DUPLICATE_AT * total
    if 2 * min(len(a), len(b)) < need:
        return False
    shared = len(counts_a.keys() & counts_b.keys())
    bound = min(len(a) - (len(counts_a) - shared), len(b) - (len(counts_b) - shared))
    if 2 * bound < need:
        return False
    return 2 * sum((counts_a & counts_b).values()) >= need


def copied_answers(answers: Sequence[str], questions: Sequence[str] | None = None) -> list[bool]:
    """Per answer: does a near-duplicate of it answer a different question? (``questions``
    None: every answer is to its own question.)"""
    if questions is not None and len(questions) != len(answers):
        raise ValueError("one question per answer")
    keys = [q.casefold().strip() for q in questions] if questions is not None else None
    words = [answer_words(a) for a in answers]
    counts = [Counter(w) for w in words]
    copied = [False] * len(answers)
    for i in range(len(answers)):
        for j in range(i + 1, len(answers)):
            if keys is not None and keys[i] == keys[j]:
                continue
            if copied[i] and copied[j]:
                continue
            if words[i] == words[j] or (
                _could_reach(words[i], words[j], counts[i], counts[j])
                and word_similarity(words[i], words[j]) >= NEAR_DUPLICATE_AT
            ):
                copied[i] = copied[j] = True
    return copied


def duplicate_share(answers: Sequence[str], questions: Sequence[str] | None = None) -> float | None:
    """Share of ``answers`` that are copied (:func:`copied_answers`); None for no answers."""
    if not answers:
        return None
    flags = copied_answers(answers, questions)
    return sum(flags) / len(flags)


def collapsed(share: float | None, reference_share: float | None = None) -> bool | None:
    """The verdict on a set: share ≥ :data:`COLLAPSED_AT` and, with a reference share, at least
    :data:`COLLAPSE_MARGIN` above it; None when the share is unknown."""
    if share is None:
        return None
    if share < COLLAPSED_AT:
        return False
    return reference_share is None or share - reference_share >= COLLAPSE_MARGIN - 1e-9
