"""`tif eval qa` model work: one model's answers and scores for every item, and its
membership-inference AUCs.

Per forget item: the greedy answer, its ROUGE-L recall against the true answer (ROUGE-L F1 of
a text window's continuation, MUSE VerbMem style), the answer probability exp(−mean
answer-token NLL) (EOS included), the mean probability of the UW tokens and of the GW tokens
(EOS counts as GW; see ``data/encoding.py``), and the leak verdicts of
:mod:`tif_unlearn.evaluate.leak` (sampled answers and shifted question forms, forget set only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from ..data.encoding import FALLBACK_TEMPLATE, encode_record, has_chat_template, render_chat
from ..data.records import Record
from ..tokens import IGNORE_INDEX
from . import leak, metrics
from .generation import generate, sample
from .options import QAEvalOptions
from .qa_fluency import fluency
from .qa_items import EvalSets, Item
from .qa_utility import mark_correct
from .scoring import ScoredAnswer, score_records


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
        return render_chat(tokenizer, messages), False
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
        verdict = leak.item_leak(
            phrases, answers["greedy"], answers["sampled"], answers["shifted"], item.prompt
        )
    return {
        "generated": answers["greedy"],
        "rouge": rouge(answers["greedy"], item.truth),
        "answer_prob": math.exp(-scored.avg_nll),
        "uw_prob": mean_prob(scored.token_logps, uw),
        "gw_prob": mean_prob(scored.token_logps, gw),
        "leak": None if verdict is None else asdict(verdict),
        "fluency": asdict(fluency(answers["greedy"])),
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


def evaluate_model(model, tokenizer, sets: EvalSets, options: QAEvalOptions) -> dict:
    """Per-item rows of every set (holdout: only its MIA; utility: ``correct`` in place of
    the leak verdict), for one model."""
    out = {
        "forget": evaluate_items(model, tokenizer, sets.forget, options, audit=True, desc="forget")
    }
    for name in ("retain", "utility"):
        items = getattr(sets, name)
        if items:
            out[name] = evaluate_items(model, tokenizer, items, options, audit=False, desc=name)
    if "utility" in out:
        out["utility"] = mark_correct(out["utility"])
    if sets.holdout:
        holdout = score_items(model, tokenizer, sets.holdout, options, "holdout")
        out["mia"] = mia(out["forget"], holdout, options.min_k)
    return out
