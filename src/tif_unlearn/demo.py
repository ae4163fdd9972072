"""`tif demo`: inject facts about fictitious people, then make the model forget one of them.

Steps (each cached under ``--out``; ``--fresh`` redoes them): fine-tune the embedded model on
the built-in people and general questions, annotate the forget person's answers with a local
identifier, unlearn that person with each method at the same budget, evaluate every model,
and write a before/after table, a plot and a self-contained HTML report.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .config import FinetuneConfig, UnlearnConfig
from .data.annotations import write_annotated
from .data.records import QARecord
from .errors import TifError
from .report.demo_text import leak_caption, leak_table, results_table, show_annotations

log = logging.getLogger("tif_unlearn")


@dataclass
class DemoConfig:
    model: str = field(default="smollm2-135m", metadata={"help": "model to start from"})
    methods: tuple[str, ...] = field(
        default=("tif", "npo"), metadata={"help": "comma-separated methods"}
    )
    identifier: str = field(
        default="combined",
        metadata={"help": "local identifier for TIF UW (combined = ner + frequency)"},
    )
    forget_person: int = field(default=0, metadata={"help": "which person to forget (0-3)"})
    out: str = field(default="runs/demo", metadata={"help": "output folder (models, report)"})
    fresh: bool = field(default=False, metadata={"help": "redo every cached step"})
    finetune_epochs: float = 5.0
    finetune_lr: float = 2e-4
    unlearn_epochs: float = 6.0
    unlearn_lr: float = 1e-4
    batch_size: int = 4
    max_new_tokens: int = 40
    leak_samples: int = 8  # N of the best-of-N leak rate
    # Hyperparameters the demo sets on top of each method's defaults (config.methods).
    method_options: dict = field(default_factory=lambda: {"tif": {"beta": 0.3}})

    def __post_init__(self):
        if not self.methods:
            raise TifError("--methods needs at least one method")


def demo_data() -> dict:
    text = resources.files("tif_unlearn").joinpath("resources/demo_people.json").read_text("utf-8")
    return json.loads(text)


def demo_sets(data: dict, forget_person: int) -> dict[str, list[QARecord]]:
    people = data["people"]
    if not 0 <= forget_person < len(people):
        raise TifError(f"--forget-person must be in 0..{len(people) - 1}")

    def records(rows, source):
        return [QARecord(r["question"], r["answer"], source=source) for r in rows]

    forget = records(people[forget_person]["qa"], people[forget_person]["name"])
    retain = [
        r for i, p in enumerate(people) if i != forget_person for r in records(p["qa"], p["name"])
    ]
    return {"forget": forget, "retain": retain, "general": records(data["general"], "general")}


SIGNATURE_FILE = "demo_step.json"
# 2: `tif eval qa` code, with the leak audit; 3: partial leaks, fluency, the held-out set
EVAL_VERSION = 3


def is_done(folder: Path, fresh: bool, signature: dict) -> bool:
    """A cached step counts only if it was made with the same settings (``signature``)."""
    if fresh and folder.exists():
        shutil.rmtree(folder)
    saved = folder / SIGNATURE_FILE
    if not (folder / "tif_run.json").is_file() or not saved.is_file():
        return False
    return json.loads(saved.read_text()) == json.loads(json.dumps(signature))


def mark_done(folder: Path, signature: dict) -> None:
    (folder / SIGNATURE_FILE).write_text(json.dumps(signature, indent=2))


def finetune_step(config: DemoConfig, out: Path, data_file: Path) -> Path:
    from .train import run_finetune

    folder = out / "finetuned"
    signature = {
        "model": config.model,
        "epochs": config.finetune_epochs,
        "lr": config.finetune_lr,
        "batch_size": config.batch_size,
        "data": data_file.read_text(),
    }
    if is_done(folder, config.fresh, signature):
        log.info("fine-tuned model found in %s (cached)", folder)
        return folder
    log.info("step 1/4: fine-tuning %s on the demo people", config.model)
    run_finetune(
        FinetuneConfig(
            model=config.model,
            data=str(data_file),
            out=str(folder),
            epochs=config.finetune_epochs,
            lr=config.finetune_lr,
            batch_size=config.batch_size,
            warmup_epochs=0.5,
            overwrite=True,
        )
    )
    mark_done(folder, signature)
    return folder


def identify_step(config: DemoConfig, forget: list[QARecord], out: Path) -> list[QARecord]:
    from .identify import identify

    log.info("step 2/4: marking unwanted words with the '%s' identifier", config.identifier)
    result = identify(config.identifier, forget)
    annotated = result.annotated()
    if not annotated:
        raise TifError(f"the '{config.identifier}' identifier annotated no forget answer")
    write_annotated(annotated, out / "data" / "forget.annotated.jsonl")
    return annotated


def unlearn_step(config: DemoConfig, method: str, model_dir: Path, out: Path) -> Path:
    from .train import run_unlearn

    folder = out / method
    forget = out / "data" / ("forget.annotated.jsonl" if method == "tif" else "forget.jsonl")
    signature = {
        "base": (model_dir / SIGNATURE_FILE).read_text(),
        "forget": forget.read_text(),
        "epochs": config.unlearn_epochs,
        "lr": config.unlearn_lr,
        "options": config.method_options.get(method, {}),
    }
    if is_done(folder, config.fresh, signature):
        log.info("%s model found in %s (cached)", method, folder)
        return folder
    run_unlearn(
        UnlearnConfig(
            model=str(model_dir),
            method=method,
            forget=str(forget),
            retain=str(out / "data" / "retain.jsonl"),
            out=str(folder),
            epochs=config.unlearn_epochs,
            lr=config.unlearn_lr,
            batch_size=config.batch_size,
            warmup_epochs=0.5,
            overwrite=True,
            **config.method_options.get(method, {}),
        )
    )
    mark_done(folder, signature)
    return folder


def set_result(name: str, rows: list[dict]) -> dict:
    """One set's demo numbers from `tif eval qa`'s rows: mean answer probability, ROUGE-L
    recall, the answers and the share of degenerate ones; for the forget set also the UW/GW
    token probabilities and the leak rates (strict and partial; greedy, best-of-N, format
    shift); for the held-out set the share of correct answers."""
    from .evaluate.qa_report import summarise
    from .evaluate.qa_utility import mark_correct

    if name == "held_out":
        rows = mark_correct(rows)
    summary = summarise(rows)
    result = {
        "prob": summary["answer_prob"],
        "rouge": summary["rouge"],
        "answers": [row["generated"] for row in rows],
        "degenerate": summary["fluency"]["degenerate"],
    }
    if name == "forget":
        result |= {key: summary[key] for key in ("uw_prob", "gw_prob", "leak")}
    if "accuracy" in summary:
        result["accuracy"] = summary["accuracy"]
    return result


def evaluate_model(
    model_spec: str, sets: dict[str, list[QARecord]], max_new_tokens: int, leak_samples: int = 8
) -> dict:
    """Per set, with `tif eval qa`'s code (the leak audit on the forget set only): the numbers
    of :func:`set_result`."""
    from .evaluate.options import QAEvalOptions
    from .evaluate.qa_items import qa_item
    from .evaluate.qa_scoring import evaluate_items
    from .models import load_model

    model, tokenizer = load_model(model_spec)
    options = QAEvalOptions(leak_samples=leak_samples, max_new_tokens=max_new_tokens)
    result = {}
    for name, records in sets.items():
        items = [qa_item(r) for r in records]
        audit = name == "forget"
        rows = evaluate_items(model, tokenizer, items, options, audit=audit, desc=name)
        result[name] = set_result(name, rows)
    return result


def evaluate_step(config: DemoConfig, name: str, model_spec: str, sets, out: Path) -> dict:
    """Evaluate one model, cached by (model, its run record, the questions, answer length)."""
    cache = out / "eval" / f"{name}.json"
    model_run = Path(model_spec) / "tif_run.json"
    signature = {
        "model": model_spec,
        "run": model_run.read_text() if model_run.is_file() else None,
        "questions": [
            [r.question, r.answer, r.unwanted_spans] for records in sets.values() for r in records
        ],
        "max_new_tokens": config.max_new_tokens,
        "leak_samples": config.leak_samples,
        "evaluation": EVAL_VERSION,
    }
    if cache.is_file() and not config.fresh:
        saved = json.loads(cache.read_text())
        if saved.get("signature") == json.loads(json.dumps(signature)):
            return saved["result"]
    log.info("evaluating %s", name)
    result = evaluate_model(model_spec, sets, config.max_new_tokens, config.leak_samples)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"signature": signature, "result": result}, indent=2))
    return result


def add_duplicates(results: dict[str, dict], sets: dict[str, list[QARecord]]) -> None:
    """Per model and set, the share of answers copied from another question's answer
    (:mod:`evaluate.qa_collapse`; from the saved answers, so cached evaluations get it too)."""
    from .evaluate.qa_collapse import duplicate_share

    for result in results.values():
        for name, records in sets.items():
            if name in result and "answers" in result[name]:
                questions = [r.question for r in records]
                result[name]["duplicates"] = duplicate_share(result[name]["answers"], questions)


def held_out_records() -> list[QARecord]:
    from .evaluate.qa_utility import builtin_records

    return builtin_records()


def run_demo(config: DemoConfig) -> Path:
    from .report.demo_report import write_report

    out = Path(config.out)
    data = demo_data()
    sets = demo_sets(data, config.forget_person)
    data_dir = out / "data"
    write_annotated(sets["forget"] + sets["retain"] + sets["general"], data_dir / "train.jsonl")
    write_annotated(sets["forget"], data_dir / "forget.jsonl")
    write_annotated(sets["retain"] + sets["general"], data_dir / "retain.jsonl")
    person = data["people"][config.forget_person]["name"]
    finetuned = finetune_step(config, out, data_dir / "train.jsonl")
    annotated = identify_step(config, sets["forget"], out)
    print(f"Unwanted words in {person}'s answers ([[UW]], the rest is GW):")
    print(show_annotations(annotated))
    models = {"base": config.model, "finetuned": str(finetuned)}
    for i, method in enumerate(config.methods, start=1):
        log.info("step 3/4: unlearning %s with %s (%d/%d)", person, method, i, len(config.methods))
        models[method] = str(unlearn_step(config, method, finetuned, out))
    log.info("step 4/4: evaluating %d models", len(models))
    eval_sets = dict(sets, forget=annotated, held_out=held_out_records())
    results = {
        name: evaluate_step(config, name, spec, eval_sets, out) for name, spec in models.items()
    }
    add_duplicates(results, eval_sets)
    table = results_table(results)
    print(
        f"\nForgetting {person} (forget = {len(annotated)} QA about {person}; "
        f"retain = the other people; general = general knowledge, trained on with the retain "
        f"set; held-out = {len(eval_sets['held_out'])} general questions never trained on):"
        f"\n{table}"
    )
    print(f"\n{leak_caption(len(annotated), config.leak_samples)}")
    print(leak_table(results, config.leak_samples))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report = write_report(out, person, sets, annotated, results)
    print(f"\nHTML report: {report}")
    return report
