"""TOFU-mini's evaluation (bench_tofu.py): ``tif eval tofu`` on a model folder (cached), the
answer length, the per-epoch probe, the walk that chooses a run's point, and the table's
numbers (Forget Quality and PrivLeak against the retain model)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from bench_spec import FLOOR
from cache import cached_json, model_digest, read_json, wait_for_result
from common import log_step
from probes import token_group_probs
from selection import walk_order
from tofu_pair import QA_PER_AUTHOR

UTILITY_SETS = ("retain", "real_authors", "world_facts")
GENERATION_LENGTHS = (64, 96, 128, 160, 200)  # the first that truncates < 2 % is used
HEADLINE = (
    "forget_quality",
    "model_utility",
    "forget_rouge",
    "forget_prob",
    "forget_truth_ratio",
    "retain_rouge",
    "retain_prob",
    "real_authors_rouge",
    "world_facts_rouge",
    "privleak",
)
ROUGE_PARTS = ("retain_rouge", "real_authors_rouge", "world_facts_rouge")


def eval_options(p, files: dict, utility_items: int, max_new_tokens: int = 64, sets=None):
    from tif_unlearn.evaluate.tofu_data import TofuEvalOptions

    return TofuEvalOptions(
        **({"sets": sets} if sets else {}),  # all four by default (the options are cache keys)
        data_dir=str(files.get("tofu_dir", "auto")),  # the forget authors' folder (tofu_pair)
        forget_split="forget01",
        retain_questions=p.retain_authors * QA_PER_AUTHOR,
        utility_items=utility_items,
        max_items=p.max_items,
        max_new_tokens=max_new_tokens,
        generate_batch_size=64,  # the sweep's cached evaluations were made at 64 (part of the key)
    )


def generation_length(p, files: dict, tokenizer) -> tuple[int, float]:
    """The shortest of GENERATION_LENGTHS truncating < 2 % of the evaluated reference answers
    (their tokens + EOS), and that truncation rate."""
    from tif_unlearn.evaluate.tofu_data import SET_SPLITS, load_eval_rows

    options = eval_options(p, files, p.utility_items)
    answers = [r["answer"] for name in SET_SPLITS for r in load_eval_rows(name, options)]
    lengths = np.array(
        [len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers]
    )
    if p.generation_tokens:
        return p.generation_tokens, float(np.mean(lengths > p.generation_tokens))
    return shortest_length(lengths)


def shortest_length(lengths, candidates=GENERATION_LENGTHS, max_rate=0.02) -> tuple[int, float]:
    """The first of ``candidates`` that truncates fewer than ``max_rate`` of the answers whose
    token ``lengths`` are given (the last one if none does), and its truncation rate."""
    lengths = np.asarray(lengths)
    for length in candidates:
        rate = float(np.mean(lengths > length))
        if rate < max_rate:
            return length, rate
    return candidates[-1], float(np.mean(lengths > candidates[-1]))


def full_eval(p, files: dict, folder: Path, cache: Path, sets=None) -> dict:
    """``tif eval tofu`` (generation included) on one model folder, cached; Forget Quality and
    PrivLeak are added against the retain model by :func:`headline`. ``sets`` (default: all
    four) may leave out the forget set, which also skips the MIA."""
    from tif_unlearn.evaluate.tofu import evaluate_tofu
    from tif_unlearn.models import load_model

    model, tokenizer = load_model(str(folder))
    length, rate = generation_length(p, files, tokenizer)
    options = eval_options(p, files, p.utility_items, length, sets)
    signature = {"model": model_digest(folder), "options": vars(options)}

    def compute():
        log_step(f"full evaluation of {folder}")
        started = time.perf_counter()
        results = evaluate_tofu(model, tokenizer, options)
        results["eval_seconds"] = round(time.perf_counter() - started, 1)
        results["truncation_rate"] = rate
        return results

    return cached_json(cache, signature, compute)


def retain_reference(p, work: Path, wait_minutes: float = 120):
    """The retain model's forget-set numbers (waits for eval:retain, which may be running in
    the other worker)."""
    from tif_unlearn.evaluate.tofu_reference import reference_from_results

    missing = "the retain model's evaluation is missing: run eval:retain first"
    results = wait_for_result(work / "eval" / "retain.json", wait_minutes, missing)
    return reference_from_results(results, str(work / "retain"))


def probe(p, model, tokenizer, files: dict, reference) -> dict:
    """Scoring-only numbers of one checkpoint: FQ, forget probability and truth ratio, UW/GW
    token probabilities (GPT-4o spans), and the utility proxy."""
    from tif_unlearn.evaluate import metrics
    from tif_unlearn.evaluate.tofu import evaluate_set
    from tif_unlearn.evaluate.tofu_logs import eval_set_scores

    options = eval_options(p, files, p.probe_items)
    forget, _ = evaluate_set(model, tokenizer, "forget", options, generate_answers=False)
    scores = eval_set_scores(forget, "forget")
    proxy = {}
    for name in UTILITY_SETS:
        eval_set, _ = evaluate_set(model, tokenizer, name, options, generate_answers=False)
        numbers = eval_set_scores(eval_set, name)
        proxy.update({k: v for k, v in numbers.items() if not k.endswith("rouge")})
    ks = metrics.forget_quality(forget.truth_ratios(), reference.forget_set.truth_ratios())
    return {
        "fq": ks.pvalue,
        "forget_prob": scores["forget_prob"],
        "forget_truth_ratio": scores["forget_truth_ratio"],
        "mu_proxy": metrics.model_utility(proxy),
        **token_group_probs(model, tokenizer, files["gpt4o"], p.max_items),
    }


def choose_run_point(p, files, name, trajectory, base, folder, work, reference):
    """v2's point (``Spec.choose``): :func:`choose_point` under FLOOR × the fine-tuned model's
    full Model Utility."""
    finetuned = read_json(work / "eval" / "finetuned.json")["result"]
    floor_mu = FLOOR * finetuned["summary"]["model_utility"]
    return choose_point(p, files, name, trajectory, floor_mu, folder, work, reference)


def choose_point(p, files, name, trajectory, floor_mu, folder, work, reference):
    """The best-FQ epoch whose full Model Utility ≥ ``floor_mu``: epochs are evaluated in
    ``walk_order`` (best probe FQ first; the probe's FQ is the full evaluation's), the utility
    sets alone first, until one keeps the floor, which then gets the full evaluation; None if
    none does."""
    for point in walk_order(trajectory, "fq", "mu_proxy"):
        epoch, model = point["epoch"], folder / f"epoch{point['epoch']}"
        cache = work / "eval" / f"{name}.epoch{epoch}.json"
        utility, full = epoch_utility(p, files, model, cache)
        if utility >= floor_mu:
            full = full or full_eval(p, files, model, cache)
            return {"epoch": epoch, **headline(full, reference)}
        log_step(f"{name}: epoch {epoch} below the full utility floor ({utility:.3f})")
    return None


def epoch_utility(p, files, model: Path, cache: Path) -> tuple[float, dict | None]:
    """Full Model Utility of a checkpoint, and its full evaluation where one is cached (read
    once: MU comes from it); else None, and MU comes from the three utility sets alone
    (cached beside it as ``*.utility.json``): the same number."""
    if cache.is_file():
        full = full_eval(p, files, model, cache)
        return model_utility(full), full
    utility_cache = cache.with_name(cache.name.replace(".json", ".utility.json"))
    return model_utility(full_eval(p, files, model, utility_cache, UTILITY_SETS)), None


def model_utility(results: dict) -> float:
    """Model Utility from an evaluation's utility-set aggregates (the same number as a full
    evaluation's summary, which needs the forget set too)."""
    from tif_unlearn.evaluate.tofu_logs import model_utility_of

    aggregates = {}
    for name in UTILITY_SETS:
        aggregates.update(results["sets"][name]["aggregate"])
    return model_utility_of(aggregates)


def headline(results: dict, reference=None) -> dict:
    """The table's numbers; with the retain model's ``reference``, Forget Quality (KS test of
    the forget-set truth ratios) and PrivLeak (Min-40% AUC against the retain model's)."""
    from tif_unlearn.evaluate import metrics
    from tif_unlearn.evaluate.tofu import safe_privleak

    summary = {key: results["summary"].get(key) for key in HEADLINE}
    summary["truncation_rate"] = results.get("truncation_rate")
    if reference is not None:
        ratios = [item["truth_ratio"] for item in results["sets"]["forget"]["items"]]
        ks = metrics.forget_quality(ratios, reference.forget_set.truth_ratios())
        summary["forget_quality"] = ks.pvalue
        summary["privleak"] = safe_privleak(results["mia"]["min_k_auc"], reference.min_k_auc)
    return summary


def rouge_parts(point: dict) -> str:
    """The generation ROUGE parts of Model Utility (the table's extra column): the smallest of
    its nine numbers decides the harmonic mean."""
    return " / ".join(f"{point[k]:.3f}" for k in ROUGE_PARTS)
