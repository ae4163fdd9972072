"""Benchmark: TIF against the baselines on MUSE-News at a scale this CPU can run (MUSE-mini).

Protocol (documented in benchmarks/README.md; every number is a ``Protocol`` field):
- model: SmolLM2-135M-Instruct (``smollm2-135m``, fp32);
- forget corpus: the first F = 24 MUSE-News ``verbmem/forget.json`` passages, each cut to an
  excerpt of the last 64 tokens of its ``prompt`` and the first 60 tokens of its ``gt``
  (prompt + gt concatenated; one excerpt fits one window of 128 tokens); retain corpus: the
  first 8 ``privleak/retain.json`` articles, each cut to its first 256 tokens (2 windows);
- target = ``tif finetune`` on forget + retain texts (8 epochs, lr 2e-4); retrained = the same
  recipe on the retain texts only; both cached;
- unlearning at the same budget (2 epochs, lr 1e-4, batch 4) for ga, graddiff, npo (+retain),
  simnpo (+retain), tif with the best local identifier (``phrases``) and tif with the ``llm``
  identifier run by the local SmolLM2-135M (its failures are recorded; with no success at all
  the run is skipped with a note in the results);
- evaluation with the library's MUSE evaluator on a MUSE-layout folder written under
  ``--work``: VerbMem on the F excerpts (continue the 64-token prompt for 60 new tokens, ROUGE-L
  F1 against the 60-token gt), KnowMem on the first 20 ``forget_qa`` and ``retain_qa`` items
  (with MUSE's in-context examples), PrivLeak = Min-40% AUC of the F forget excerpts against F
  ``privleak/holdout.json`` excerpts of the same length, relative to the retrained model's AUC.

Estimated time for the defaults (``estimate_minutes``, from the rates measured on the 2-core
development machine with 2 threads: training 70 tokens/s, greedy generation 25 tokens/s,
scoring/prefill 210 tokens/s, 8 s per model load): about 62 minutes (fine-tuning 14, unlearning
17, 8 evaluations 28, identifiers and model loads 4). ``--smoke`` shrinks everything for a quick
end-to-end check (3 passages, 1 epoch, 2 KnowMem items; a few minutes).

Every step is cached under ``--work`` (delete a folder to redo it); results are rewritten after
each model, so a partial run leaves partial results. Not a test.
Usage: python benchmarks/muse_mini.py [--threads 2] [--work runs/muse_mini] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
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
from tif_unlearn.data.records import TextRecord

MODEL = "smollm2-135m"
ICL_FILES = ("knowmem/forget_qa_icl.json", "knowmem/retain_qa_icl.json")
# Rates measured on the development machine (benchmarks/README.md), for estimate_minutes.
RATES = {"train": 70.0, "generate": 25.0, "score": 210.0, "load_s": 8.0}
KNOWMEM_PROMPT_TOKENS = 350  # the 10 in-context QA pairs and the question (SmolLM2 tokens)


@dataclass
class Protocol:
    forget_passages: int = 24
    prompt_tokens: int = 64
    gt_tokens: int = 60
    retain_texts: int = 8
    retain_tokens: int = 256
    window_length: int = 128
    finetune_epochs: float = 8.0
    finetune_lr: float = 2e-4
    unlearn_epochs: float = 2.0
    unlearn_lr: float = 1e-4
    batch_size: int = 4
    knowmem_items: int = 20
    knowmem_new_tokens: int = 32
    eval_batch_size: int = 16
    local_identifier: str = "phrases"
    llm_identifier_model: str = MODEL
    llm_batch_size: int = 8
    # name -> (method, forget annotations, method options)
    runs: dict = field(
        default_factory=lambda: {
            "ga": ("ga", "plain", {}),
            "graddiff": ("graddiff", "plain", {}),
            "npo": ("npo", "plain", {"beta": 0.1}),
            "simnpo": ("simnpo", "plain", {}),
            "tif-local": ("tif", "local", {"beta": 0.2}),
            "tif-llm": ("tif", "llm", {"beta": 0.2}),
        }
    )


SMOKE = {
    "forget_passages": 3,
    "prompt_tokens": 16,
    "gt_tokens": 8,
    "retain_texts": 2,
    "retain_tokens": 32,
    "window_length": 32,
    "finetune_epochs": 1.0,
    "unlearn_epochs": 1.0,
    "knowmem_items": 2,
    "knowmem_new_tokens": 8,
}


def estimate_minutes(protocol: Protocol) -> dict[str, float]:
    """Wall-time estimate per phase from ``RATES`` (see the module docstring)."""
    excerpt = protocol.prompt_tokens + protocol.gt_tokens
    forget_tokens = protocol.forget_passages * excerpt
    retain_tokens = protocol.retain_texts * protocol.retain_tokens
    finetune = protocol.finetune_epochs * (forget_tokens + 2 * retain_tokens) / RATES["train"]
    steps = math.ceil(protocol.forget_passages / protocol.batch_size) * protocol.unlearn_epochs
    step_tokens = protocol.batch_size * excerpt
    n_retain_runs = sum(m != "ga" for m, _, _ in protocol.runs.values())
    n_runs = len(protocol.runs)
    unlearn = steps * step_tokens * (n_runs + n_retain_runs) / RATES["train"]
    unlearn += 4 * forget_tokens / RATES["score"]  # reference caching (npo, simnpo, 2 x tif)
    knowmem_items = 2 * protocol.knowmem_items
    generated = protocol.forget_passages * protocol.gt_tokens
    generated += knowmem_items * protocol.knowmem_new_tokens
    prefill = knowmem_items * KNOWMEM_PROMPT_TOKENS + protocol.forget_passages * (
        protocol.prompt_tokens + 2 * excerpt  # VerbMem prompts; PrivLeak forget + holdout
    )
    evaluation = (n_runs + 2) * (generated / RATES["generate"] + prefill / RATES["score"])
    identify = protocol.forget_passages * 64 / RATES["generate"] + 30
    loads = (2 * n_runs + 5) * RATES["load_s"]
    parts = {
        "finetune": finetune,
        "unlearn": unlearn,
        "evaluate": evaluation,
        "identify_and_loads": identify + loads,
    }
    minutes = {name: round(seconds / 60, 1) for name, seconds in parts.items()}
    minutes["total"] = round(sum(parts.values()) / 60, 1)
    return minutes


def muse_dir() -> Path:
    from tif_unlearn.evaluate.muse import default_muse_dir

    folder = default_muse_dir("news")
    if folder is None:
        raise SystemExit("MUSE-News not found (expected ../shared/data/muse-news)")
    return folder


def token_slice(tokenizer, text: str, start: int | None, stop: int | None) -> str:
    """The characters of ``text`` covered by its tokens ``[start:stop]`` (Python slicing)."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"][start:stop]
    return text[offsets[0][0] : offsets[-1][1]]


def excerpts(protocol: Protocol, tokenizer, source: Path) -> dict[str, list]:
    """The forget excerpts (VerbMem prompt/gt), retain texts and same-length holdout texts."""
    verbmem = json.loads((source / "verbmem/forget.json").read_text())[: protocol.forget_passages]
    pairs = [
        {
            "prompt": token_slice(tokenizer, row["prompt"], -protocol.prompt_tokens, None),
            "gt": token_slice(tokenizer, row["gt"], 0, protocol.gt_tokens),
        }
        for row in verbmem
    ]
    length = protocol.prompt_tokens + protocol.gt_tokens
    holdout = json.loads((source / "privleak/holdout.json").read_text())
    retain = json.loads((source / "privleak/retain.json").read_text())
    return {
        "verbmem": pairs,
        "forget": [p["prompt"] + p["gt"] for p in pairs],
        "holdout": [  # from the middle of each article, like the forget excerpts
            token_slice(tokenizer, text, 256, 256 + length)
            for text in holdout[: protocol.forget_passages]
        ],
        "retain": [
            token_slice(tokenizer, text, 0, protocol.retain_tokens)
            for text in retain[: protocol.retain_texts]
        ],
    }


def write_muse_folder(protocol: Protocol, parts: dict, source: Path, folder: Path) -> None:
    """A MUSE-layout folder for ``evaluate_muse``: our excerpts, the first KnowMem items."""
    files = {
        "verbmem/forget.json": parts["verbmem"],
        "privleak/forget.json": parts["forget"],
        "privleak/holdout.json": parts["holdout"],
    }
    for split in ("forget_qa", "retain_qa"):
        rows = json.loads((source / f"knowmem/{split}.json").read_text())
        files[f"knowmem/{split}.json"] = rows[: protocol.knowmem_items]
    for relative, rows in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(json.dumps(rows, ensure_ascii=False))
    for relative in ICL_FILES:
        shutil.copyfile(source / relative, folder / relative)


def build_data(protocol: Protocol, work: Path) -> dict[str, Path]:
    """Write the corpora under ``work/data`` and the evaluation folder ``work/data/muse``."""
    from tif_unlearn.evaluate.muse import MuseEvalOptions, check_muse_data
    from tif_unlearn.models import load_tokenizer

    source, data = muse_dir(), work / "data"
    tokenizer = load_tokenizer(MODEL)
    parts = excerpts(protocol, tokenizer, source)
    longest = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in parts["forget"])
    if longest > protocol.window_length:
        raise SystemExit(f"a forget excerpt has {longest} tokens > --window-length: raise it")
    files = {name: data / f"{name}.jsonl" for name in ("forget", "retain", "train")}
    forget = [TextRecord(t) for t in parts["forget"]]
    retain = [TextRecord(t) for t in parts["retain"]]
    write_annotated(forget, files["forget"])
    write_annotated(retain, files["retain"])
    write_annotated(forget + retain, files["train"])
    files["muse"] = data / "muse"
    write_muse_folder(protocol, parts, source, files["muse"])
    check_muse_data(MuseEvalOptions(data_dir=str(files["muse"])))
    return files


def identify_forget(protocol: Protocol, kind: str, files: dict, work: Path) -> dict:
    """Annotate the forget excerpts (cached); returns the file (None if all failed) and counts."""
    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.identify import identify

    path, summary_path = work / "data" / f"forget.{kind}.jsonl", work / "data" / f"{kind}.json"
    name = protocol.local_identifier if kind == "local" else "llm"
    options = {}
    if kind == "llm":
        options = {"model": protocol.llm_identifier_model, "batch_size": protocol.llm_batch_size}
    signature = {"forget": files["forget"].read_text(), "identifier": name, "options": options}
    if summary_path.is_file():
        saved = json.loads(summary_path.read_text())
        if saved["signature"] == signature:
            log_step(f"identifier {name}: cached")
            return {**saved["summary"], "file": path if saved["summary"]["n_ok"] else None}
    log_step(f"identifying the forget excerpts with {name}")
    if kind == "llm":
        options = {**options, "cache_dir": str(work / "identify-llm")}
    result = identify(name, load_records(files["forget"]), **options)
    summary = {
        "identifier": name,
        "n_ok": result.n_ok,
        "n_failures": len(result.failures),
        "failures": [[index, reason] for index, reason in result.failures],
        "seconds": round(result.seconds, 1),
    }
    if result.n_ok:
        write_annotated(result.annotated(), path)
    summary_path.write_text(json.dumps({"signature": signature, "summary": summary}))
    return {**summary, "file": path if result.n_ok else None}


def finetune(protocol: Protocol, name: str, data: Path, work: Path) -> Path:
    folder = work / name
    signature = {
        "data": data.read_text(),
        "epochs": protocol.finetune_epochs,
        "lr": protocol.finetune_lr,
        "batch_size": protocol.batch_size,
        "window_length": protocol.window_length,
    }
    label = f"fine-tuning {name} on {data.name}"
    return cached_training(
        "finetune",
        folder,
        signature,
        label,
        model=MODEL,
        data=str(data),
        epochs=protocol.finetune_epochs,
        lr=protocol.finetune_lr,
        batch_size=protocol.batch_size,
        window_length=protocol.window_length,
        short_texts="keep",
    )


def unlearn(protocol: Protocol, name: str, target: Path, forget: Path, files: dict, work: Path):
    method, _, options = protocol.runs[name]
    folder = work / "unlearned" / name
    signature = {
        "target": (target / "demo_step.json").read_text(),
        "forget": forget.read_text(),
        "retain": files["retain"].read_text(),
        "method": method,
        "options": options,
        "epochs": protocol.unlearn_epochs,
        "lr": protocol.unlearn_lr,
        "batch_size": protocol.batch_size,
        "window_length": protocol.window_length,
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
        window_length=protocol.window_length,
        short_texts="keep",
        **options,
    )


def eval_options(protocol: Protocol, files: dict, retain_auc: float | None):
    from tif_unlearn.evaluate.muse import MuseEvalOptions

    return MuseEvalOptions(
        data_dir=str(files["muse"]),
        batch_size=protocol.eval_batch_size,
        retain_auc=retain_auc,
        verbmem_new_tokens=protocol.gt_tokens,
        knowmem_new_tokens=protocol.knowmem_new_tokens,
    )


def evaluate(name: str, folder: Path, options, files: dict, work: Path) -> dict:
    """``tif eval muse`` on one model, cached (keyed by its run record and the eval data)."""
    from tif_unlearn.evaluate.muse import evaluate_muse
    from tif_unlearn.models import load_model

    cache = work / "eval" / f"{name}.json"
    eval_data = sorted(files["muse"].rglob("*.json"))
    signature = {
        "run": (folder / "tif_run.json").read_text(),
        # the folder's contents, not its path (which changes with how --work is spelled)
        "options": {k: v for k, v in vars(options).items() if k != "data_dir"},
        "data": {str(p.relative_to(files["muse"])): p.read_text() for p in eval_data},
    }
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved["signature"] == json.loads(json.dumps(signature)):
            log_step(f"{name}: evaluation cached")
            return saved["results"]
    log_step(f"evaluating {name}")
    started = time.perf_counter()
    model, tokenizer = load_model(str(folder))
    results = evaluate_muse(model, tokenizer, options)
    results["eval_seconds"] = round(time.perf_counter() - started, 1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"signature": signature, "results": results}))
    return results


HEADLINE = (
    ("verbmem_f1", "VerbMem ↓"),
    ("knowmem_forget_f1", "KnowMem forget ↓"),
    ("knowmem_retain_f1", "KnowMem retain ↑"),
    ("min_k_auc", "Min-40% AUC"),
    ("privleak", "PrivLeak (%) →0"),
)


def headline(results: dict) -> dict:
    return {key: results["summary"].get(key) for key, _ in HEADLINE}


def markdown_table(rows: dict[str, dict]) -> str:
    lines = [
        "| model | " + " | ".join(label for _, label in HEADLINE) + " | unlearn s | note |",
        "|---" * (len(HEADLINE) + 3) + "|",
    ]
    for name, row in rows.items():
        metrics = row.get("metrics", {})
        cells = ["–" if metrics.get(k) is None else f"{metrics[k]:.3f}" for k, _ in HEADLINE]
        seconds = row.get("train_seconds")
        extra = [" " if seconds is None else str(seconds), row.get("note", "")]
        lines.append(f"| {name} | " + " | ".join(cells + extra) + " |")
    return "\n".join(lines)


def muse_scatter_png(rows: dict[str, dict]) -> bytes:
    points = {}
    for name, row in rows.items():
        metrics = row.get("metrics", {})
        verb, know = metrics.get("verbmem_f1"), metrics.get("knowmem_retain_f1")
        if verb is not None and know is not None:
            points[name] = (verb, know)
    return scatter_png(
        points,
        baselines={"finetuned": "s", "retrained": "*"},
        labels=(
            "VerbMem on the forget excerpts (ROUGE-L F1, lower = more forgotten)",
            "KnowMem on retain_qa (ROUGE-L F1, utility)",
            "MUSE-News-mini (SmolLM2-135M): forgetting vs utility",
        ),
    )


def train_seconds(folder: Path) -> float | None:
    return json.loads((folder / "tif_run.json").read_text()).get("train_seconds")


def write_outputs(protocol: Protocol, rows: dict, extra: dict, results: Path) -> None:
    payload = {
        "machine": machine(),
        "protocol": {k: v for k, v in asdict(protocol).items() if k != "runs"},
        "runs": {
            name: {"method": m, "forget": a, "options": o}
            for name, (m, a, o) in protocol.runs.items()
        },
        "estimate_minutes": estimate_minutes(protocol),
        "wall_minutes": round((time.time() - extra["started"]) / 60, 1),
        "identifiers": extra["identifiers"],
        "models": rows,
    }
    write_results("muse_mini.json", payload, folder=results)
    (results / "muse_mini.md").write_text(markdown_table(rows) + "\n")
    (results / "muse_mini.png").write_bytes(muse_scatter_png(rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="cache folder (runs/muse_mini; --smoke: ..._smoke)")
    parser.add_argument(
        "--results-dir", help="where results go (benchmarks/results; --smoke: <work>/results)"
    )
    parser.add_argument("--only", nargs="*", help="run only these unlearning runs")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, end-to-end check")
    for f in fields(Protocol):
        if f.type in ("int", "float", "str"):
            kind = {"int": int, "float": float, "str": str}[f.type]
            parser.add_argument("--" + f.name.replace("_", "-"), type=kind, help=f"({f.default})")
    return parser.parse_args()


def make_protocol(args: argparse.Namespace) -> Protocol:
    """Defaults < --smoke sizes < explicit options."""
    values = dict(SMOKE) if args.smoke else {}
    for f in fields(Protocol):
        if getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    protocol = Protocol(**values)
    if args.only:
        protocol.runs = {k: v for k, v in protocol.runs.items() if k in args.only}
    return protocol


def reference_auc(results: dict) -> float | None:
    """The retrained model's AUC, when PrivLeak can divide by it (0 < AUC < 1)."""
    auc = results["summary"]["min_k_auc"]
    return auc if 0 < auc < 1 else None


def unlearn_row(protocol, name, target, files, options, extra, work) -> dict:
    """Identify (TIF runs), unlearn and evaluate one run; its results row."""
    _, kind, _ = protocol.runs[name]
    forget, note = files["forget"], None
    if kind != "plain":
        found = identify_forget(protocol, kind, files, work)
        extra["identifiers"][kind] = {k: v for k, v in found.items() if k != "file"}
        if found["file"] is None:
            return {"note": f"skipped: {found['identifier']} failed on all {found['n_failures']}"}
        forget = found["file"]
        if found["n_failures"]:
            note = f"{found['n_failures']} of {protocol.forget_passages} excerpts not annotated"
    folder = unlearn(protocol, name, target, forget, files, work)
    results = evaluate(name, folder, options, files, work)
    row = {"metrics": headline(results), "train_seconds": train_seconds(folder)}
    return {**row, "note": note} if note else row


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    protocol = make_protocol(args)
    log_step(f"estimated minutes: {estimate_minutes(protocol)}")
    work = Path(args.work or ("runs/muse_mini_smoke" if args.smoke else "runs/muse_mini"))
    results_dir = Path(args.results_dir or (work / "results" if args.smoke else RESULTS))
    extra = {"started": time.time(), "identifiers": {}}
    files = build_data(protocol, work)
    target = finetune(protocol, "finetuned", files["train"], work)
    retrained = finetune(protocol, "retrained", files["retain"], work)
    retrained_results = evaluate(
        "retrained", retrained, eval_options(protocol, files, None), files, work
    )
    auc = reference_auc(retrained_results)
    rows = {"retrained": {"metrics": headline(retrained_results)}}
    rows["retrained"]["metrics"]["privleak"] = 0.0 if auc else None  # against itself
    options = eval_options(protocol, files, auc)
    rows["finetuned"] = {"metrics": headline(evaluate("finetuned", target, options, files, work))}
    if auc is None:
        rows["retrained"]["note"] = "retrained AUC is 0 or 1: no PrivLeak"
    write_outputs(protocol, rows, extra, results_dir)
    log_step(f"fine-tuned VerbMem: {rows['finetuned']['metrics']['verbmem_f1']:.3f}")
    for name in protocol.runs:
        rows[name] = unlearn_row(protocol, name, target, files, options, extra, work)
        write_outputs(protocol, rows, extra, results_dir)
        log_step(f"{name}: " + json.dumps(rows[name]))
    print(markdown_table(rows))
    print(f"total {math.ceil((time.time() - extra['started']) / 60)} min")


if __name__ == "__main__":
    main()
