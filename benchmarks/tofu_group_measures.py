"""Forgetting measured where TIF acts, at a run's point (efficacy v3, tofu_group_tasks.py):
the mean UW- and GW-token probability and the `tif eval qa` leak audit on the spans of
`phrases` (rules, nothing fitted: no run's training spans), and the UW/GW probabilities on
`learned`'s spans (the TIF family's training spans)."""

from __future__ import annotations

from pathlib import Path

from cache import cached_json, model_digest
from common import log_step

LEAK_SAMPLES = 4


def forgetting_measures(phrases: str, learned: Path, model: Path, cache: Path) -> dict:
    """At a point: UW/GW-token probabilities and the `tif eval qa` leak audit on the `phrases`
    spans, and the UW/GW probabilities on `learned`'s (the TIF family's training spans)."""

    def compute() -> dict:
        log_step(f"forgetting measures of {model}")
        return {
            "phrases": qa_audit(model, Path(phrases)),
            "learned_token_probs": token_probs(model, learned),
        }

    signature = {"model": model_digest(model), "phrases": phrases, "n": LEAK_SAMPLES}
    return cached_json(cache, signature, compute)


def token_probs(model: Path, annotated: Path) -> dict:
    from probes import token_group_probs

    from tif_unlearn.models import load_model

    loaded, tokenizer = load_model(str(model))
    return token_group_probs(loaded, tokenizer, annotated)


def qa_audit(model: Path, annotated: Path) -> dict:
    """`tif eval qa` on the forget answers: per-item and summary leak rates and UW/GW
    probabilities (greedy, best-of-4, format shift), no utility set."""
    from tif_unlearn.evaluate.options import QAEvalFiles, QAEvalOptions
    from tif_unlearn.evaluate.qa import evaluate_qa

    files = QAEvalFiles(model=str(model), forget=str(annotated), utility="none")
    return evaluate_qa(files, QAEvalOptions(leak_samples=LEAK_SAMPLES))
