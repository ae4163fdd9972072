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
"""

from __future__ import annotations

import gc
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..data.encoding import FALLBACK_TEMPLATE, encode_record, has_chat_template
from ..data.loaders import load_records
from ..data.records import QARecord, Record, Span, TextRecord
from ..data.windows import clip_spans, window_records
from ..errors import TifError
from ..tokens import IGNORE_INDEX
from . import leak, metrics
from .runner import ScoredAnswer, generate, sample, score_records

log = logging.getLogger("tif_unlearn")

SCORE_KEYS = ("rouge", "answer_prob", "uw_prob", "gw_prob")


@dataclass
class QAEvalOptions:
    identifier: str = "phrases"  # marks UW in forget records that have no annotation
    leak_samples: int = 8  # N of the best-of-N leak (0: no sampling)
    temperature: float = 1.0
    seed: int = 0
    format_shift: bool = True  # ask each forget question in the other forms too
    batch_size: int = 16
    max_new_tokens: int = 64
    max_length: int = 512  # tokens kept of each scored example
    window_length: int = 128  # tokens per window of a text record
    min_k: float = 0.4
    dtype: str = "float32"  # weights dtype of the evaluated models (the CLI resolves auto)

    def __post_init__(self):
        checks = {
            "--leak-samples must be >= 0": self.leak_samples >= 0,
            "--temperature must be > 0": self.temperature > 0,
            "--batch-size must be >= 1": self.batch_size >= 1,
            "--max-new-tokens must be >= 1": self.max_new_tokens >= 1,
            "--window-length must be >= 2": self.window_length >= 2,
        }
        for message, ok in checks.items():
            if not ok:
                raise TifError(message)
        from ..identify import IDENTIFIERS

        if self.identifier not in IDENTIFIERS:
            names = ", ".join(IDENTIFIERS)
            raise TifError(f"unknown identifier {self.identifier!r}; choose one of: {names}")


@dataclass(frozen=True)
class Item:
    """One evaluated example: what is scored (``record``), the prompt the model is asked, the
    true answer / continuation and its UW spans."""

    record: Record
    prompt: str
    truth: str
    truth_spans: tuple[Span, ...] | None
    is_text: bool

    @property
    def phrases(self) -> list[str]:
        return leak.unwanted_phrases(self.truth, self.truth_spans, self.prompt)


# --------------------------------------------------------------------------- data


def load_eval_records(path: str, what: str) -> list[Record]:
    records = load_records(path)  # DataError (exit 2, one line) on any bad row
    log.debug("%s: %d records from %s", what, len(records), path)
    return records


def annotate_missing(records: list[Record], identifier: str) -> list[Record]:
    """Records without ``unwanted_spans`` get them from ``identifier``; annotated ones are kept."""
    from ..identify import identify

    missing = [i for i, r in enumerate(records) if r.unwanted_spans is None]
    if not missing:
        return records
    log.info("marking unwanted words of %d records with '%s'", len(missing), identifier)
    result = identify(identifier, [records[i] for i in missing])
    if result.failures:
        log.warning("the identifier failed on %d records: no UW there", len(result.failures))
    annotated = list(records)
    for index, record in zip(missing, result.records, strict=True):
        annotated[index] = record
    return annotated


def qa_item(record: QARecord) -> Item:
    return Item(record, record.question, record.answer, record.unwanted_spans, is_text=False)


def window_item(tokenizer, window: TextRecord) -> Item:
    """A text window as prompt (its first half of tokens) and continuation (the rest)."""
    enc = tokenizer(window.text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    split = offsets[len(offsets) // 2][0] if len(offsets) > 1 else len(window.text)
    spans = window.unwanted_spans
    truth_spans = None if spans is None else clip_spans(spans, split, len(window.text))
    truth = window.text[split:]
    return Item(window, window.text[:split], truth, truth_spans, is_text=True)


def make_items(tokenizer, records: Sequence[Record], options: QAEvalOptions) -> list[Item]:
    if all(isinstance(r, QARecord) for r in records):
        return [qa_item(r) for r in records]
    windows = window_records(records, tokenizer, length=options.window_length, short_texts="keep")
    return [window_item(tokenizer, w) for w in windows]


# --------------------------------------------------------------------------- model work


def target_masks(tokenizer, record: Record, max_length: int) -> tuple[list[bool], list[bool]]:
    """UW and GW flags aligned with :class:`ScoredAnswer` ``token_logps`` (the scored tokens:
    every target token after the first position)."""
    enc = encode_record(tokenizer, record, max_length=max_length)
    kept = [label != IGNORE_INDEX for label in enc.labels[1:]]
    uw = [u for u, keep in zip(enc.uw_mask[1:], kept, strict=True) if keep]
    gw = [g for g, keep in zip(enc.gw_mask[1:], kept, strict=True) if keep]
    return uw, gw


def mean_prob(token_logps: Sequence[float], mask: Sequence[bool]) -> float | None:
    """Mean probability exp(log p) of the masked tokens; None when no token is masked."""
    chosen = [math.exp(lp) for lp, m in zip(token_logps, mask, strict=True) if m]
    return float(np.mean(chosen)) if chosen else None


def render_prompt(tokenizer, form: dict) -> tuple[str, bool]:
    """A shifted form (:func:`leak.shifted_messages`) as ``(prompt text, add special
    tokens)``: through the chat template when it asks for it and the tokenizer has one."""
    if form["chat"] and has_chat_template(tokenizer):
        messages = [{"role": "user", "content": form["user"]}]
        if form["system"]:
            messages.insert(0, {"role": "system", "content": form["system"]})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return text, False
    prompt = FALLBACK_TEMPLATE.format(question=form["user"])
    return (f"{form['system']}\n{prompt}" if form["system"] else prompt), True


def answer_length(tokenizer, items: Sequence[Item], options: QAEvalOptions) -> int:
    """New tokens to generate: ``max_new_tokens`` for answers, the longest true continuation
    for text windows."""
    if not items or not items[0].is_text:
        return options.max_new_tokens
    return max(len(tokenizer(i.truth, add_special_tokens=False)["input_ids"]) for i in items)


def greedy_answers(model, tokenizer, items: Sequence[Item], options: QAEvalOptions) -> list[str]:
    return generate(
        model,
        tokenizer,
        [i.prompt for i in items],
        max_new_tokens=answer_length(tokenizer, items, options),
        raw_prompts=bool(items) and items[0].is_text,
        batch_size=options.batch_size,
        desc="greedy answers",
    )


def sampled_answers(model, tokenizer, items: Sequence[Item], options: QAEvalOptions):
    """``leak_samples`` answers per item (only items that can leak are asked; others: [])."""
    asked = [i for i, item in enumerate(items) if item.phrases]
    out: list[list[str]] = [[] for _ in items]
    if not asked or not options.leak_samples:
        return out
    raw = items[0].is_text
    texts = sample(
        model,
        tokenizer,
        [items[i].prompt for i in asked],
        n=options.leak_samples,
        temperature=options.temperature,
        seed=options.seed,
        raw_prompts=raw,
        max_new_tokens=answer_length(tokenizer, items, options),
        batch_size=options.batch_size * 4,
    )
    for index, group in zip(asked, texts, strict=True):
        out[index] = group
    return out


def shifted_answers(model, tokenizer, items: Sequence[Item], options: QAEvalOptions):
    """Greedy answers to each shifted form of each QA item that can leak ({} for the rest)."""
    out: list[dict[str, str]] = [{} for _ in items]
    if not options.format_shift or not items or items[0].is_text:
        return out
    asked = [
        (i, name, render_prompt(tokenizer, form))
        for i, item in enumerate(items)
        if item.phrases
        for name, form in leak.shifted_messages(item.prompt, item.truth, item.truth_spans).items()
    ]
    for add_special in (False, True):
        group = [(i, name, text) for i, name, (text, special) in asked if special == add_special]
        answers = generate(
            model,
            tokenizer,
            [text for _, _, text in group],
            raw_prompts=True,
            add_special_tokens=add_special,
            max_new_tokens=options.max_new_tokens,
            batch_size=options.batch_size,
            desc="shifted forms",
        )
        for (i, name, _), answer in zip(group, answers, strict=True):
            out[i][name] = answer
    return out


def item_row(item: Item, scored: ScoredAnswer, masks, answers: dict, min_k: float) -> dict:
    """One item's numbers for one model (``answers``: greedy, sampled, shifted)."""
    uw, gw = masks
    rouge = metrics.rouge_l_f1 if item.is_text else metrics.rouge_l_recall
    phrases = item.phrases
    verdict = None
    if phrases:
        verdict = leak.item_leak(phrases, answers["greedy"], answers["sampled"], answers["shifted"])
    return {
        "generated": answers["greedy"],
        "rouge": rouge(answers["greedy"], item.truth),
        "answer_prob": math.exp(-scored.avg_nll),
        "uw_prob": mean_prob(scored.token_logps, uw),
        "gw_prob": mean_prob(scored.token_logps, gw),
        "leak": None if verdict is None else asdict(verdict),
        "sampled": answers["sampled"],
        "shifted": answers["shifted"],
        "min_k": metrics.min_k_score(scored.token_logps, min_k) if scored.n_tokens else None,
        "avg_nll": scored.avg_nll,
    }


def score_items(model, tokenizer, items: Sequence[Item], options: QAEvalOptions, desc: str):
    return score_records(
        model,
        tokenizer,
        [i.record for i in items],
        batch_size=options.batch_size,
        max_length=options.max_length,
        desc=desc,
    )


def evaluate_items(
    model, tokenizer, items: Sequence[Item], options: QAEvalOptions, *, audit: bool, desc: str
) -> list[dict]:
    """Rows of :func:`item_row` for ``items``; the leak audit's samples and shifted forms only
    when ``audit`` (the forget set)."""
    scored = score_items(model, tokenizer, items, options, desc)
    greedy = greedy_answers(model, tokenizer, items, options)
    none = [[] for _ in items], [{} for _ in items]
    sampled, shifted = none
    if audit:
        sampled = sampled_answers(model, tokenizer, items, options)
        shifted = shifted_answers(model, tokenizer, items, options)
    rows = []
    for i, item in enumerate(items):
        masks = target_masks(tokenizer, item.record, options.max_length)
        answers = {"greedy": greedy[i], "sampled": sampled[i], "shifted": shifted[i]}
        rows.append(item_row(item, scored[i], masks, answers, options.min_k))
    return rows


def mia(forget_rows: Sequence[dict], holdout_scored: Sequence[ScoredAnswer], k: float) -> dict:
    """Min-k% and loss AUC of forget vs holdout (:func:`metrics.mia_auc`)."""
    holdout_min_k = [metrics.min_k_score(s.token_logps, k) for s in holdout_scored if s.n_tokens]
    forget_min_k = [r["min_k"] for r in forget_rows if r["min_k"] is not None]
    return {
        f"min_{round(k * 100)}_auc": metrics.mia_auc(forget_min_k, holdout_min_k),
        "loss_auc": metrics.mia_auc(
            [r["avg_nll"] for r in forget_rows], [s.avg_nll for s in holdout_scored]
        ),
    }


@dataclass
class EvalSets:
    forget: list[Item]
    retain: list[Item] | None = None
    holdout: list[Item] | None = None


def evaluate_model(model, tokenizer, sets: EvalSets, options: QAEvalOptions) -> dict:
    """Per-item rows of every set (holdout: only its MIA), for one model."""
    out = {
        "forget": evaluate_items(model, tokenizer, sets.forget, options, audit=True, desc="forget")
    }
    if sets.retain:
        out["retain"] = evaluate_items(
            model, tokenizer, sets.retain, options, audit=False, desc="retain"
        )
    if sets.holdout:
        holdout = score_items(model, tokenizer, sets.holdout, options, "holdout")
        out["mia"] = mia(out["forget"], holdout, options.min_k)
    return out


# --------------------------------------------------------------------------- summary


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarise(rows: Sequence[dict]) -> dict:
    """Mean of each score over the items (None values left out) and the leak rates."""
    summary = {"n_items": len(rows)}
    summary |= {key: _mean(r[key] for r in rows) for key in SCORE_KEYS}
    verdicts = [None if r["leak"] is None else leak.ItemLeak(**r["leak"]) for r in rows]
    summary["leak"] = leak.leak_rates(verdicts)
    return summary


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def change(after: dict, before: dict) -> dict:
    """after − before for every number both have (leak rates included; counts and per-item
    leak verdicts, which are booleans, left out)."""
    out = {}
    for key, value in after.items():
        other = before.get(key)
        if isinstance(value, dict) and isinstance(other, dict):
            nested = change(value, other)
            if nested:
                out[key] = nested
        elif _is_number(value) and _is_number(other) and key != "n_items":
            out[key] = value - other
    return out


def set_result(items: Sequence[Item], model_rows, reference_rows=None) -> dict:
    """One set's summary (model, reference, change) and items (true answer, UW, rows)."""
    summary = {"model": summarise(model_rows)}
    if reference_rows is not None:
        summary["reference"] = summarise(reference_rows)
        summary["change"] = change(summary["model"], summary["reference"])
    listed = []
    for i, item in enumerate(items):
        entry = {"prompt": item.prompt, "truth": item.truth, "unwanted_words": item.phrases}
        entry["model"] = model_rows[i]
        if reference_rows is not None:
            entry["reference"] = reference_rows[i]
            scores = {key: model_rows[i][key] for key in SCORE_KEYS}
            entry["change"] = change(scores, reference_rows[i])
        listed.append(entry)
    return {"summary": summary, "items": listed}


def combine(sets: EvalSets, model_result: dict, reference_result: dict | None = None) -> dict:
    """The results document: per set its :func:`set_result`, and the MIA AUCs."""
    ref = reference_result or {}
    results = {}
    for name in ("forget", "retain"):
        items = getattr(sets, name)
        if items:
            results[name] = set_result(items, model_result[name], ref.get(name))
    if "mia" in model_result:
        results["mia"] = {"model": model_result["mia"]}
        if "mia" in ref:
            results["mia"]["reference"] = ref["mia"]
    return results


# --------------------------------------------------------------------------- command


@dataclass
class QAEvalFiles:
    model: str
    forget: str
    retain: str | None = None
    holdout: str | None = None
    reference: str | None = None


def read_records(files: QAEvalFiles, options: QAEvalOptions) -> dict[str, list[Record]]:
    """Every input file's records (forget annotated) before any model is loaded, so bad input
    fails fast."""
    records = {
        name: load_eval_records(getattr(files, name), name)
        for name in ("retain", "holdout")
        if getattr(files, name)
    }
    forget = annotate_missing(load_eval_records(files.forget, "forget"), options.identifier)
    return {"forget": forget} | records


def build_sets(records: dict[str, list[Record]], tokenizer, options) -> EvalSets:
    items = {name: make_items(tokenizer, rows, options) for name, rows in records.items()}
    return EvalSets(**items)


def evaluate_qa(files: QAEvalFiles, options: QAEvalOptions) -> dict:
    """The whole command: check the data, evaluate the reference (if any), free it, then
    evaluate the model (one model in memory at a time; texts are cut into windows with the
    tokenizer of the first model loaded)."""
    from ..models import load_model

    records = read_records(files, options)
    sets, reference_result = None, None
    if files.reference:
        ref_model, ref_tokenizer = load_model(files.reference, dtype=options.dtype)
        sets = build_sets(records, ref_tokenizer, options)
        log.info("evaluating the reference model %s", files.reference)
        reference_result = evaluate_model(ref_model, ref_tokenizer, sets, options)
        del ref_model
        gc.collect()
    model, tokenizer = load_model(files.model, dtype=options.dtype)
    sets = sets or build_sets(records, tokenizer, options)
    log.info("evaluating %s", files.model)
    results = combine(sets, evaluate_model(model, tokenizer, sets, options), reference_result)
    return {
        "model": files.model,
        "reference": files.reference,
        "options": asdict(options),
    } | results


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def qa_table(results: dict) -> str:
    """Summary lines: per set and model (model, reference, change) the scores and leak rates."""
    n = results.get("options", {}).get("leak_samples", "N")
    header = (
        f"{'set':<7} {'model':<9} {'ROUGE-L':>7} {'ans. p':>7} {'UW p':>6} {'GW p':>6} "
        f"{'leak greedy':>11} {f'best-of-{n}':>10} {'format shift':>12}"
    )
    lines = [header, "-" * len(header)]
    for name in ("forget", "retain"):
        for who, s in results.get(name, {}).get("summary", {}).items():
            rates = s.get("leak", {})
            lines.append(
                f"{name:<7} {who:<9} {_cell(s.get('rouge')):>7} {_cell(s.get('answer_prob')):>7} "
                f"{_cell(s.get('uw_prob')):>6} {_cell(s.get('gw_prob')):>6} "
                f"{_cell(rates.get('greedy')):>11} {_cell(rates.get('best_of_n')):>10} "
                f"{_cell(rates.get('format_shift')):>12}"
            )
    for who, aucs in results.get("mia", {}).items():
        listed = ", ".join(f"{k} {v:.3f}" for k, v in aucs.items())
        lines.append(f"membership inference, forget vs holdout ({who}): {listed}")
    return "\n".join(lines)
