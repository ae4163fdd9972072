"""`tif eval qa`: did the model forget *these* records? Scores and a leak audit for any
forget set (QA records or texts), with retain / holdout sets for utility and membership
inference, and optionally the model before unlearning as a reference.

Per forget item and model: the greedy answer, its ROUGE-L recall against the true answer,
the answer probability exp(−mean answer-token NLL) (EOS included), the mean probability of
the UW tokens and of the GW tokens (EOS counts as GW; see ``data/encoding.py``), and the leak
verdicts of :mod:`tif_unlearn.evaluate.leak`. A text record is cut into windows of
``window_length`` tokens; the first half of a window is the prompt and the model's greedy
continuation is scored against the second half with ROUGE-L F1 (MUSE VerbMem style); the
probabilities are those of the whole window's tokens; only continuation UW spans can leak.
Membership inference: Min-k% (k = 0.4) and loss AUC of forget vs holdout
(:func:`metrics.mia_auc`: ≈ 1 = the forget items look like training data, ≈ 0.5 = not).
Utility outside the retain set: a held-out general-knowledge set (:mod:`qa_utility`); every
greedy answer gets a degeneration check (:mod:`qa_fluency`).

Options and files: :mod:`options`; items: :mod:`qa_items`; one model's answers and scores: :mod:`qa_scoring`;
summaries, the results document and its table: :mod:`qa_report`.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import asdict

from ..devices import on_device
from .options import QAEvalFiles, QAEvalOptions
from .qa_items import build_sets, read_records
from .qa_report import combine
from .qa_scoring import evaluate_model
from .qa_utility import retain_warning

log = logging.getLogger("tif_unlearn")


def _evaluate_reference(files: QAEvalFiles, records: dict, options: QAEvalOptions):
    """The items (built with the reference's tokenizer) and the reference model's rows; the
    reference model is freed before returning."""
    from ..models import load_model

    loaded = load_model(files.reference, dtype=options.dtype)
    ref_model, ref_tokenizer = on_device(loaded, options.device)
    sets = build_sets(records, ref_tokenizer, options)
    log.info("evaluating the reference model %s", files.reference)
    reference_result = evaluate_model(ref_model, ref_tokenizer, sets, options)
    del ref_model
    gc.collect()
    return sets, reference_result


def evaluate_qa(files: QAEvalFiles, options: QAEvalOptions) -> dict:
    """The whole command: check the data, evaluate the reference (if any), free it, then
    evaluate the model (one model in memory at a time; texts are cut into windows with the
    tokenizer of the first model loaded)."""
    from ..models import load_model

    records = read_records(files, options)
    warnings = []
    if files.retain:
        warning = retain_warning(files.model, files.retain, records["retain"])
        warnings = [warning] if warning else []
    for warning in warnings:
        log.warning("warning: %s", warning)
    sets, reference_result = None, None
    if files.reference:
        sets, reference_result = _evaluate_reference(files, records, options)
    model, tokenizer = on_device(load_model(files.model, dtype=options.dtype), options.device)
    sets = sets or build_sets(records, tokenizer, options)
    log.info("evaluating %s", files.model)
    results = combine(sets, evaluate_model(model, tokenizer, sets, options), reference_result)
    return {
        "benchmark": "qa",
        "model": files.model,
        "reference": files.reference,
        "utility_set": files.utility,
        "options": asdict(options),
        "warnings": warnings,
    } | results
