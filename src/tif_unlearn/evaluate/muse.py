"""MUSE evaluation (Shi et al. 2024): VerbMem, KnowMem (forget / retain), PrivLeak.

- VerbMem: ROUGE-L F1 of 128 greedy new tokens continuing ``prompt`` vs ``gt``.
- KnowMem: ROUGE-L F1 of answers generated after the in-context examples (32 new tokens,
  cut at a blank line or "Question"); on ``retain_qa`` it is the utility-preservation number.
- PrivLeak: Min-40% AUC of privleak ``forget`` vs ``holdout`` texts, relative to the
  retrained model's AUC when given (see :func:`metrics.privleak`).
Data: a local folder laid out like the hub dataset (``knowmem/``, ``verbmem/``, ``privleak/``)
or the hub (``muse-bench/MUSE-News`` / ``MUSE-Books``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.records import TextRecord
from ..data.tofu import REPO_ROOT
from ..errors import DataError, TifError
from . import metrics
from .generation import generate
from .options import CORPORA, MuseEvalOptions
from .scoring import score_records

HUB_SPLITS = {  # our file -> (hub config, hub split)
    "knowmem/forget_qa.json": ("knowmem", "forget_qa"),
    "knowmem/forget_qa_icl.json": ("knowmem", "forget_qa_icl"),
    "knowmem/retain_qa.json": ("knowmem", "retain_qa"),
    "knowmem/retain_qa_icl.json": ("knowmem", "retain_qa_icl"),
    "verbmem/forget.json": ("verbmem", "forget"),
    "privleak/forget.json": ("privleak", "forget"),
    "privleak/holdout.json": ("privleak", "holdout"),
}


def default_muse_dir(corpus: str) -> Path | None:
    name = f"muse-{corpus}"
    for base in (Path.cwd() / ".." / "shared" / "data", REPO_ROOT.parent / "shared" / "data"):
        if (base / name).is_dir():
            return base / name
    return None


def load_muse_file(options: MuseEvalOptions, relative: str) -> list:
    """One MUSE split as a list (of dicts or strings), from a folder or the hub."""
    folder = default_muse_dir(options.corpus) if options.data_dir == "auto" else None
    if options.data_dir not in ("auto", "hub"):
        folder = Path(options.data_dir)
    if folder is None:
        return _load_muse_hub(options.corpus, relative)
    path = folder / relative
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise DataError("MUSE split file not found", path=str(path)) from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read MUSE split: {err}", path=str(path)) from err
    if not isinstance(rows, list) or not rows:
        raise DataError("expected a non-empty JSON array", path=str(path))
    return rows[: options.max_items] if options.max_items and "icl" not in relative else rows


def _load_muse_hub(corpus: str, relative: str) -> list:
    config, split = HUB_SPLITS[relative]
    name = f"muse-bench/{CORPORA[corpus]}"
    try:
        import datasets

        dataset = datasets.load_dataset(name, config, split=split)
    except Exception as err:  # offline, not found
        raise TifError(
            f"could not load {name} ({config}/{split}) from the hub: {type(err).__name__}; "
            "pass --data-dir with a local copy"
        ) from err
    rows = list(dataset)
    return [r["text"] if set(r) == {"text"} else r for r in rows]


def _string_rows(rows: list, where: str, keys: tuple[str, ...]) -> list[dict]:
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in keys):
            raise DataError(f"expected {' and '.join(keys)} strings", path=where, line=i)
    return rows


def _qa_rows(rows: list, where: str) -> list[dict]:
    return _string_rows(rows, where, ("question", "answer"))


def _texts(rows: list, where: str) -> list[str]:
    if not all(isinstance(t, str) and t.strip() for t in rows):
        raise DataError("expected a JSON array of non-empty strings", path=where)
    return rows


def check_muse_data(options: MuseEvalOptions) -> None:
    """Read and check every split once before any model work, so bad data fails fast."""
    for relative in HUB_SPLITS:
        rows = load_muse_file(options, relative)
        if relative.startswith("knowmem/"):
            _qa_rows(rows, relative)
        elif relative.startswith("verbmem/"):
            _string_rows(rows, relative, ("prompt", "gt"))
        else:
            _texts(rows, relative)


def verbmem(model, tokenizer, options: MuseEvalOptions) -> dict:
    rows = _string_rows(
        load_muse_file(options, "verbmem/forget.json"), "verbmem/forget.json", ("prompt", "gt")
    )
    outputs = generate(
        model,
        tokenizer,
        [r["prompt"] for r in rows],
        max_new_tokens=options.verbmem_new_tokens,
        batch_size=options.batch_size,
        raw_prompts=True,
        max_prompt_tokens=options.max_length,
        desc="VerbMem",
    )
    items = [
        {"gt": r["gt"], "generated": o, "rougeL_f1": metrics.rouge_l_f1(o, r["gt"])}
        for r, o in zip(rows, outputs, strict=True)
    ]
    return {"verbmem_f1": float(np.mean([i["rougeL_f1"] for i in items])), "items": items}


def icl_prompt(examples: list[dict], question: str) -> str:
    """MUSE KnowMem prompt: the in-context QA pairs, then the question."""
    shots = "".join(f"Question: {e['question']}\nAnswer: {e['answer']}\n\n" for e in examples)
    return f"{shots}Question: {question}\nAnswer:"


def knowmem(model, tokenizer, options: MuseEvalOptions, split: str) -> dict:
    rows = _qa_rows(load_muse_file(options, f"knowmem/{split}_qa.json"), f"knowmem/{split}_qa.json")
    shots = _qa_rows(load_muse_file(options, f"knowmem/{split}_qa_icl.json"), f"{split}_qa_icl")
    outputs = generate(
        model,
        tokenizer,
        [icl_prompt(shots, r["question"]) for r in rows],
        max_new_tokens=options.knowmem_new_tokens,
        batch_size=options.batch_size,
        raw_prompts=True,
        desc=f"KnowMem {split}",
    )
    items = [
        {"question": r["question"], "answer": r["answer"], "generated": a,
         "rougeL_f1": metrics.rouge_l_f1(a, r["answer"])}
        for r, a in zip(rows, map(metrics.knowmem_cut, outputs), strict=True)
    ]  # fmt: skip
    return {f"knowmem_{split}_f1": float(np.mean([i["rougeL_f1"] for i in items])), "items": items}


def _min_k_scores(
    model, tokenizer, texts: list, options: MuseEvalOptions, name: str
) -> list[float]:
    texts = _texts(texts, f"privleak/{name}.json")
    scored = score_records(
        model,
        tokenizer,
        [TextRecord(t) for t in texts],
        batch_size=max(1, options.batch_size // 4),
        max_length=options.max_length,
        desc=f"PrivLeak {name}",
    )
    return [metrics.min_k_score(s.token_logps, 0.4) for s in scored]


def privleak(model, tokenizer, options: MuseEvalOptions) -> dict:
    forget = _min_k_scores(
        model, tokenizer, load_muse_file(options, "privleak/forget.json"), options, "forget"
    )
    holdout = _min_k_scores(
        model, tokenizer, load_muse_file(options, "privleak/holdout.json"), options, "holdout"
    )
    auc = metrics.mia_auc(forget, holdout)
    result = {"min_k_auc": auc, "privleak": None}
    if options.retain_auc is not None:
        result["privleak"] = metrics.privleak(auc, options.retain_auc)
    return result


def evaluate_muse(model, tokenizer, options: MuseEvalOptions) -> dict:
    verb = verbmem(model, tokenizer, options)
    know_forget = knowmem(model, tokenizer, options, "forget")
    know_retain = knowmem(model, tokenizer, options, "retain")
    leak = privleak(model, tokenizer, options)
    summary = {
        "verbmem_f1": verb["verbmem_f1"],
        "knowmem_forget_f1": know_forget["knowmem_forget_f1"],
        "knowmem_retain_f1": know_retain["knowmem_retain_f1"],
        **leak,
    }
    return {
        "benchmark": "muse",
        "options": vars(options).copy(),
        "summary": summary,
        "sets": {
            "verbmem": verb["items"],
            "knowmem_forget": know_forget["items"],
            "knowmem_retain": know_retain["items"],
        },
    }


def muse_table(results: dict) -> str:
    labels = {
        "verbmem_f1": "VerbMem (ROUGE-L F1)",
        "knowmem_forget_f1": "KnowMem forget (ROUGE-L F1)",
        "knowmem_retain_f1": "KnowMem retain (utility)",
        "min_k_auc": "Min-40% AUC forget vs holdout",
        "privleak": "PrivLeak (%)",
    }
    rows = [(label, results["summary"].get(key)) for key, label in labels.items()]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value:.4g}" for label, value in rows if value is not None)
