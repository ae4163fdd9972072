"""Job titles: the role a sentence gives a person ("she works as a [senior data analyst]",
"he was [an auditor]", "he is [the chief financial officer] of ...").

A role noun is predicated of the subject (:func:`~tif_unlearn.identify.phrases.is_predicated_role`)
and the subject is a personal pronoun or a person's name. The ``learned`` identifier always marks
these words UW: answers used to fit it (TOFU) seldom hold job titles in this form. ``phrases``
needs no extra rule: it keeps predicated nouns as content words already.
"""

from __future__ import annotations

from ..data.records import Span
from .phrases import CONTENT_POS, MODIFIER_DEPS, is_predicated_role

PERSONAL_PRONOUNS = frozenset({"i", "you", "he", "she", "we", "they"})


def _subject_is_a_person(verb) -> bool:
    subjects = [c for c in verb.children if c.dep_ in ("nsubj", "nsubjpass")]
    return any(s.lower_ in PERSONAL_PRONOUNS or s.ent_type_ == "PERSON" for s in subjects)


def is_job_title_word(token) -> bool:
    """A word of the role a sentence gives a person: "she works as a [senior data analyst]",
    "he was [an auditor]" (subject a personal pronoun or a person's name)."""
    if token.pos_ not in CONTENT_POS or not is_predicated_role(token):
        return False
    role = token.head if token.dep_ in MODIFIER_DEPS else token
    verb = role.head if role.dep_ == "attr" else role.head.head
    return _subject_is_a_person(verb)


def job_title_spans(doc) -> list[Span]:
    """Job titles (:func:`is_job_title_word`), which answers used for fitting seldom hold."""
    return [(t.idx, t.idx + len(t)) for t in doc if is_job_title_word(t)]
