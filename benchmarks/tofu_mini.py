"""Benchmark: TIF against the baselines on TOFU at a scale this CPU can run (TOFU-mini).

Protocol (documented in benchmarks/README.md):
- model: SmolLM2-135M-Instruct (fp32); retain authors = the first K authors of TOFU
  ``full.json`` (20 QA each), forget authors = the last 2 (= ``forget01``, 40 QA);
- target = fine-tuned on retain + forget; retain model = fine-tuned on retain only (same recipe);
- every unlearning method runs at the same budget (epochs, lr, schedule, batch) on forget01
  with the K retain authors as retain set; TIF with the paper's GPT-4o annotations and TIF with
  the best local identifier; a small beta sweep for NPO and TIF (same number of settings each);
- evaluation with the library's TOFU evaluator: forget01 (all 40), holdout01 for MIA, and the
  first ``--utility-items`` of the K authors' retain_perturbed, real authors and world facts;
  Forget Quality against the retain model.

Every step is cached under ``--work`` (delete a folder to redo it); results are rewritten after
each model, so a partial run leaves partial results. Not a test.
Usage: python benchmarks/tofu_mini.py [--retain-authors 3] [--work runs/tofu_mini]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    RESULTS,
    cached_training,
    log_step,
    machine,
    scatter_png,
    write_results,
)

from tif_unlearn.data.annotations import write_annotated
from tif_unlearn.data.loaders import load_records
from tif_unlearn.data.records import QARecord
from tif_unlearn.data.tofu import default_tofu_dir, load_tofu_split

GPT4O_ANNOTATIONS = Path("tofu-uw-annotations", "forget01.llm.jsonl")
QA_PER_AUTHOR = 20
FORGET_AUTHORS = 2


@dataclass
class Protocol:
    retain_authors: int = 2
    finetune_epochs: float = 5.0
    finetune_lr: float = 2e-4
    unlearn_epochs: float = 2.0
    unlearn_lr: float = 1e-4
    batch_size: int = 4
    utility_items: int = 15
    max_new_tokens: int = 40
    local_identifier: str = "phrases"
    # name -> (method, forget annotations, method options)
    runs: dict = field(
        default_factory=lambda: {
            "tif-gpt4o": ("tif", "gpt4o", {"beta": 0.32}),
            "npo": ("npo", "plain", {"beta": 0.1}),
            "graddiff": ("graddiff", "plain", {}),
            "ga": ("ga", "plain", {}),
            "simnpo": ("simnpo", "plain", {}),
            "idkdpo": ("idkdpo", "plain", {}),
            "tif-local": ("tif", "local", {"beta": 0.32}),
            "tif-gpt4o-b0.1": ("tif", "gpt4o", {"beta": 0.1}),
            "npo-b0.5": ("npo", "plain", {"beta": 0.5}),
        }
    )


def build_data(protocol: Protocol, work: Path) -> dict[str, Path]:
    """Write the retain/forget/train files (and both forget annotations) under ``work/data``."""
    full = load_tofu_split("full")
    forget_rows = load_tofu_split("forget01")
    split = len(full) - FORGET_AUTHORS * QA_PER_AUTHOR
    if [r["question"] for r in full[split:]] != [r["question"] for r in forget_rows]:
        raise SystemExit("TOFU full.json does not end with forget01: unexpected data")
    retain_rows = full[: protocol.retain_authors * QA_PER_AUTHOR]

    def records(rows):
        return [QARecord(r["question"], r["answer"]) for r in rows]

    data = work / "data"
    files = {name: data / f"{name}.jsonl" for name in ("retain", "forget", "train")}
    write_annotated(records(retain_rows), files["retain"])
    write_annotated(records(forget_rows), files["forget"])
    write_annotated(records(retain_rows + forget_rows), files["train"])
    files["gpt4o"] = data / "forget.gpt4o.jsonl"
    gpt4o = load_records(default_tofu_dir().parent / GPT4O_ANNOTATIONS)
    if [r.question for r in gpt4o] != [r["question"] for r in forget_rows]:
        raise SystemExit("the GPT-4o annotations are not in forget01 order")
    write_annotated(gpt4o, files["gpt4o"])
    files["local"] = data / "forget.local.jsonl"
    write_annotated(local_annotations(protocol, records(forget_rows)), files["local"])
    return files


def local_annotations(protocol: Protocol, forget: list[QARecord]) -> list[QARecord]:
    from tif_unlearn.identify import identify

    result = identify(protocol.local_identifier, forget)
    if result.failures:
        raise SystemExit(f"the local identifier failed on {len(result.failures)} answers")
    return result.annotated()


def finetune(protocol: Protocol, name: str, data: Path, work: Path) -> Path:
    folder = work / name
    signature = {
        "data": data.read_text(),
        "epochs": protocol.finetune_epochs,
        "lr": protocol.finetune_lr,
        "batch_size": protocol.batch_size,
    }
    label = f"fine-tuning {name} on {data.name}"
    return cached_training(
        "finetune",
        folder,
        signature,
        label,
        model="smollm2-135m",
        data=str(data),
        epochs=protocol.finetune_epochs,
        lr=protocol.finetune_lr,
        batch_size=protocol.batch_size,
    )


def unlearn(protocol: Protocol, name: str, target: Path, files: dict, work: Path) -> Path:
    method, annotations, options = protocol.runs[name]
    forget = files["forget" if annotations == "plain" else annotations]
    folder = work / "unlearned" / name
    signature = {
        "target": (target / "demo_step.json").read_text(),
        "forget": forget.read_text(),
        "method": method,
        "options": options,
        "epochs": protocol.unlearn_epochs,
        "lr": protocol.unlearn_lr,
        "batch_size": protocol.batch_size,
    }
    label = f"unlearning with {name}"
    return cached_training(
        "unlearn",
        folder,
        signature,
        label,
        model=str(target),
        method=method,
        forget=str(forget),
        retain=str(files["retain"]) if method != "ga" else None,
        epochs=protocol.unlearn_epochs,
        lr=protocol.unlearn_lr,
        batch_size=protocol.batch_size,
        **options,
    )


def eval_options(protocol: Protocol):
    from tif_unlearn.evaluate.tofu import TofuEvalOptions

    return TofuEvalOptions(
        forget_split="forget01",
        retain_questions=protocol.retain_authors * QA_PER_AUTHOR,
        utility_items=protocol.utility_items,
        max_new_tokens=protocol.max_new_tokens,
    )


def reference_fingerprint(reference) -> str:
    """A hash of what FQ and PrivLeak take from the retain model (not its path, which changes
    with how --work is spelled)."""
    forget = reference.forget_set
    arrays = (forget.avg_gt_loss, forget.avg_paraphrased_loss, forget.average_perturb_loss)
    content = json.dumps([[a.tolist() for a in arrays], reference.min_k_auc])
    return hashlib.sha256(content.encode()).hexdigest()


def evaluate(protocol: Protocol, name: str, folder: Path, work: Path, reference=None) -> dict:
    """``tif eval tofu`` on one model, cached next to it (keyed by its run record)."""
    from tif_unlearn.evaluate.tofu import evaluate_tofu
    from tif_unlearn.models import load_model

    cache = work / "eval" / f"{name}.json"
    options = eval_options(protocol)
    signature = {
        "run": (folder / "tif_run.json").read_text(),
        "options": vars(options),
        "reference": reference_fingerprint(reference) if reference else None,
    }
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved["signature"] == json.loads(json.dumps(signature)):
            log_step(f"{name}: evaluation cached")
            return saved["results"]
    log_step(f"evaluating {name}")
    started = time.perf_counter()
    model, tokenizer = load_model(str(folder))
    results = evaluate_tofu(model, tokenizer, options, reference)
    results["eval_seconds"] = round(time.perf_counter() - started, 1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"signature": signature, "results": results}))
    return results


HEADLINE = (
    ("forget_quality", "FQ"),
    ("model_utility", "MU"),
    ("forget_rouge", "forget ROUGE"),
    ("forget_prob", "forget prob"),
    ("forget_truth_ratio", "forget TR"),
    ("retain_rouge", "retain ROUGE"),
    ("retain_prob", "retain prob"),
    ("real_authors_rouge", "real ROUGE"),
    ("world_facts_rouge", "world ROUGE"),
    ("privleak", "PrivLeak"),
)


def headline(results: dict) -> dict:
    summary = results["summary"]
    return {key: summary.get(key) for key, _ in HEADLINE}


def markdown_table(rows: dict[str, dict]) -> str:
    def cell(key, value):
        if value is None:
            return "–"
        return f"{value:.2e}" if key == "forget_quality" else f"{value:.3f}"

    lines = [
        "| model | " + " | ".join(label for _, label in HEADLINE) + " | unlearn s |",
        "|---" * (len(HEADLINE) + 2) + "|",
    ]
    for name, row in rows.items():
        cells = [cell(key, row["metrics"].get(key)) for key, _ in HEADLINE]
        seconds = row.get("train_seconds")
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {'' if seconds is None else seconds} |"
        )
    return "\n".join(lines)


def tofu_scatter_png(rows: dict[str, dict]) -> bytes:
    points = {}
    for name, row in rows.items():
        fq, mu = row["metrics"].get("forget_quality"), row["metrics"].get("model_utility")
        if fq is not None and mu is not None:
            points[name] = (max(fq, 1e-30), mu)
    return scatter_png(
        points,
        baselines={"finetuned": "s", "retain": "*"},
        labels=(
            "Forget Quality (KS p-value vs retain model, log scale)",
            "Model Utility",
            "TOFU-mini (SmolLM2-135M, forget01): forget quality vs utility",
        ),
        log_x=True,
    )


def train_seconds(folder: Path) -> float | None:
    return json.loads((folder / "tif_run.json").read_text()).get("train_seconds")


def write_outputs(protocol: Protocol, rows: dict, started: float) -> None:
    payload = {
        "machine": machine(),
        "protocol": {k: v for k, v in vars(protocol).items() if k != "runs"},
        "runs": {
            name: {"method": m, "forget": a, "options": o}
            for name, (m, a, o) in protocol.runs.items()
        },
        "wall_minutes": round((time.time() - started) / 60, 1),
        "models": rows,
    }
    write_results("tofu_mini.json", payload)
    (RESULTS / "tofu_mini.md").write_text(markdown_table(rows) + "\n")
    (RESULTS / "tofu_mini.png").write_bytes(tofu_scatter_png(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/tofu_mini", help="cache folder for models")
    parser.add_argument("--retain-authors", type=int, default=Protocol.retain_authors)
    parser.add_argument("--only", nargs="*", help="run only these unlearning runs")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    protocol = Protocol(retain_authors=args.retain_authors)
    if args.only:
        protocol.runs = {k: v for k, v in protocol.runs.items() if k in args.only}
    work, started = Path(args.work), time.time()
    files = build_data(protocol, work)
    target = finetune(protocol, "finetuned", files["train"], work)
    retain = finetune(protocol, "retain", files["retain"], work)
    from tif_unlearn.evaluate.tofu import reference_from_results

    retain_results = evaluate(protocol, "retain", retain, work)
    reference = reference_from_results(retain_results, str(retain))
    # Against itself the retain model has FQ = 1 (identical samples) and PrivLeak = 0.
    rows = {"retain": {"metrics": {**headline(retain_results), "forget_quality": 1.0}}}
    rows["retain"]["metrics"]["privleak"] = 0.0
    finetuned = evaluate(protocol, "finetuned", target, work, reference)
    rows["finetuned"] = {"metrics": headline(finetuned)}
    write_outputs(protocol, rows, started)
    for name in protocol.runs:
        folder = unlearn(protocol, name, target, files, work)
        results = evaluate(protocol, name, folder, work, reference)
        rows[name] = {"metrics": headline(results), "train_seconds": train_seconds(folder)}
        write_outputs(protocol, rows, started)
        log_step(f"{name}: " + json.dumps(rows[name]["metrics"]))
    print(markdown_table(rows))
    print(f"total {math.ceil((time.time() - started) / 60)} min")


if __name__ == "__main__":
    main()
