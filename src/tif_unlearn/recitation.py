"""Does a model say what it was taught? Greedy answers to questions (``tif ask``) and the check
after ``tif finetune`` that the model recites its own training answers: a model that cannot
recite its forget set has nothing to unlearn, and every leak rate after unlearning reads 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .data.records import QARecord

log = logging.getLogger("tif_unlearn")

# mean ROUGE-L recall of the greedy answers under which the fine-tuned model is said not to
# recite its training answers (the demo's fine-tuned model reaches 0.98, the issue-34
# model fine-tuned at the old defaults 0.48)
MIN_RECITATION = 0.8
SMALL_DATA_HINT = "--lr 2e-4 --epochs 10 (docs/own-data.md)"


def greedy_answers(model, tokenizer, questions: Sequence[str], max_new_tokens: int = 64):
    """The model's greedy answers, each question formatted as in training (the chat template
    where the tokenizer has one)."""
    from .evaluate.generation import generate

    return generate(model, tokenizer, list(questions), max_new_tokens=max_new_tokens, desc="ask")


def spread_sample(records: Sequence, n: int) -> list:
    """``n`` records spread evenly over ``records`` (all of them when there are fewer):
    10 records, n 4 -> indices 0, 2, 5, 7."""
    if n >= len(records):
        return list(records)
    return [records[k * len(records) // n] for k in range(n)]


def recitation_recall(answers: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L recall of ``answers`` against the training ``references``."""
    from .evaluate.metrics import rouge_l_recall

    scores = [rouge_l_recall(a, r) for a, r in zip(answers, references, strict=True)]
    return sum(scores) / len(scores)


def recitation_warning(recall: float, n: int, threshold: float = MIN_RECITATION) -> str | None:
    """The one-line warning when the mean recall of ``n`` answers is under ``threshold``."""
    if recall >= threshold:
        return None
    return (
        f"the fine-tuned model recites its training answers poorly (ROUGE-L recall {recall:.2f} "
        f"on {n} training questions, under {threshold}): there is little to unlearn. On a few "
        f"records and a small model try {SMALL_DATA_HINT}; --recall-check 0 skips this check"
    )


def check_recitation(model, tokenizer, records: Sequence, n: int) -> float | None:
    """Greedy-answer ``n`` training questions spread over ``records`` (QA records only), log a
    warning when the answers do not recite the training answers; return the recall (None when
    there is nothing to check)."""
    questions = [r for r in records if isinstance(r, QARecord)]
    picked = spread_sample(questions, n) if n > 0 else []
    if not picked:
        return None
    answers = greedy_answers(model, tokenizer, [r.question for r in picked])
    recall = recitation_recall(answers, [r.answer for r in picked])
    log.info("recitation check: ROUGE-L recall %.3f on %d training questions", recall, len(picked))
    warning = recitation_warning(recall, len(picked))
    if warning:
        log.warning(warning)
    return recall
