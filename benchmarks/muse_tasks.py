"""The tasks of MUSE-News-mini v2 (see muse_mini.py): data, fine-tuning, evaluation, one
unlearning run with its per-epoch probe, second seeds and the report. Each task runs in its
own one-thread process and caches what it finishes."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from common import RESULTS, cached_training, log_step, machine, write_results
from trajectory import (
    EpochProbe,
    best_under_floor,
    cached_json,
    cached_probe,
    command_line,
    complete_families,
    digest,
    epoch_end_steps,
    family_summary,
    finished_runs,
    model_digest,
    pareto_frontier,
    parse_run,
    read_json,
    run_name,
    second_seeds,
    token_group_probs,
    trajectories_png,
    verdict,
    verdict_line,
    write_records,
)

from tif_unlearn.data.loaders import load_records
from tif_unlearn.data.records import TextRecord

MODEL = "smollm2-135m"
ICL_FILES = ("knowmem/forget_qa_icl.json", "knowmem/retain_qa_icl.json")
RUNS_DIR = RESULTS / "muse_mini_runs"
BASE_MODELS = (
    "finetuned",
    "retrained",
)  # fine-tuned target, and the model never trained on the forget set
FLOOR = 0.95  # a run's point must keep this fraction of the fine-tuned model's KnowMem-retain
SCORE, UTILITY = "verbmem_f1", "knowmem_retain_f1"

# family -> (method, forget annotations, method options); text corpora: no idkdpo. TIF uses
# the paper's MUSE weights (β 0.2, L = 0.1·(LPL + PL) + NLL_retain); spans from `phrases`.
FAMILIES = {
    "tif": ("tif", "local", {"beta": 0.2, "forget_scale": 0.1}),
    "simnpo": ("simnpo", "plain", {}),
    "npo": ("npo", "plain", {}),
    "graddiff": ("graddiff", "plain", {}),
    "ga": ("ga", "plain", {}),
    "tif-npo": ("npo", "local", {"targeted": True}),
    "tif-simnpo": ("simnpo", "local", {"targeted": True}),
    "tif-centered": ("tif", "local", {"beta": 0.2, "forget_scale": 0.1, "lpl_space": "centered"}),
    "tif-graddiff": ("graddiff", "local", {"targeted": True}),
}


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
    epochs: int = 5
    batch_size: int = 4
    lrs: tuple[float, ...] = (1e-4, 3e-4)
    knowmem_items: int = 20
    knowmem_new_tokens: int = 32
    local_identifier: str = "phrases"
    families: dict = field(default_factory=lambda: dict(FAMILIES))
    minutes_per_run: float = 19.0  # measured 14-22 (AVX2, 1 thread; for the estimate only)
    minutes_per_finetune: float = 18.0  # base models: fine-tune and evaluate, measured

    @property
    def runs(self) -> dict[str, tuple[str, float, int]]:
        return {
            run_name(family, lr, 0): (family, lr, 0) for lr in self.lrs for family in self.families
        }

    def recipe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("minutes")}


def protocol(quick: bool) -> Protocol:
    if not quick:
        return Protocol()
    return Protocol(
        forget_passages=4,
        prompt_tokens=16,
        gt_tokens=8,
        retain_texts=2,
        retain_tokens=32,
        window_length=32,
        finetune_epochs=1.0,
        epochs=2,
        lrs=(1e-4,),
        knowmem_items=2,
        knowmem_new_tokens=8,
        families={k: FAMILIES[k] for k in ("tif", "npo")},
        minutes_per_run=3.0,
        minutes_per_finetune=1.0,
    )


def runs_dir(p: Protocol, work: Path) -> Path:
    return RUNS_DIR if p == Protocol() else work / "runs"


# --------------------------------------------------------------------------- data


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


def excerpts(p: Protocol, tokenizer, source: Path) -> dict[str, list]:
    """The forget excerpts (VerbMem prompt/gt), retain texts and same-length holdout texts."""
    verbmem = json.loads((source / "verbmem/forget.json").read_text())[: p.forget_passages]
    pairs = [
        {
            "prompt": token_slice(tokenizer, row["prompt"], -p.prompt_tokens, None),
            "gt": token_slice(tokenizer, row["gt"], 0, p.gt_tokens),
        }
        for row in verbmem
    ]
    length = p.prompt_tokens + p.gt_tokens
    holdout = json.loads((source / "privleak/holdout.json").read_text())
    retain = json.loads((source / "privleak/retain.json").read_text())
    return {
        "verbmem": pairs,
        "forget": [x["prompt"] + x["gt"] for x in pairs],
        "holdout": [  # from the middle of each article, like the forget excerpts
            token_slice(tokenizer, text, 256, 256 + length) for text in holdout[: p.forget_passages]
        ],
        "retain": [
            token_slice(tokenizer, text, 0, p.retain_tokens) for text in retain[: p.retain_texts]
        ],
    }


def write_muse_folder(p: Protocol, parts: dict, source: Path, folder: Path) -> None:
    """A MUSE-layout folder for ``evaluate_muse``: our excerpts, the first KnowMem items."""
    files = {
        "verbmem/forget.json": parts["verbmem"],
        "privleak/forget.json": parts["forget"],
        "privleak/holdout.json": parts["holdout"],
    }
    for split in ("forget_qa", "retain_qa"):
        rows = json.loads((source / f"knowmem/{split}.json").read_text())
        files[f"knowmem/{split}.json"] = rows[: p.knowmem_items]
    texts = {relative: json.dumps(rows, ensure_ascii=False) for relative, rows in files.items()}
    texts.update({relative: (source / relative).read_text() for relative in ICL_FILES})
    for relative, text in texts.items():  # atomically: the other worker may be reading them
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)


def build_data(p: Protocol, work: Path) -> dict[str, Path]:
    """The corpora under ``work/data``, the forget excerpts annotated by the local identifier,
    and the evaluation folder ``work/data/muse``."""
    from tif_unlearn.evaluate.muse import MuseEvalOptions, check_muse_data
    from tif_unlearn.models import load_tokenizer

    source, data = muse_dir(), work / "data"
    tokenizer = load_tokenizer(MODEL)
    parts = excerpts(p, tokenizer, source)
    longest = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in parts["forget"])
    if longest > p.window_length:
        raise SystemExit(f"a forget excerpt has {longest} tokens > the window length: raise it")
    forget = [TextRecord(t) for t in parts["forget"]]
    retain = [TextRecord(t) for t in parts["retain"]]
    files = {name: data / f"{name}.jsonl" for name in ("forget", "retain", "train", "local")}
    write_records(forget, files["forget"])
    write_records(retain, files["retain"])
    write_records(forget + retain, files["train"])
    write_records(local_annotations(p, forget), files["local"])
    files["muse"] = data / "muse"
    write_muse_folder(p, parts, source, files["muse"])
    check_muse_data(MuseEvalOptions(data_dir=str(files["muse"])))
    return files


def local_annotations(p: Protocol, forget: list[TextRecord]) -> list[TextRecord]:
    from tif_unlearn.identify import identify

    result = identify(p.local_identifier, forget)
    if result.failures:
        raise SystemExit(f"{p.local_identifier} failed on {len(result.failures)} excerpts")
    return result.annotated()


def finetune_signature(p: Protocol, name: str, files: dict) -> dict:
    data = files["train" if name == "finetuned" else "retain"]
    recipe = (p.finetune_epochs, p.finetune_lr, p.batch_size, p.window_length)
    return {"data": digest(data.read_text()), "recipe": recipe}


def finetune(p: Protocol, name: str, files: dict, work: Path) -> Path:
    data = files["train" if name == "finetuned" else "retain"]
    return cached_training(
        "finetune",
        work / name,
        finetune_signature(p, name, files),
        f"fine-tuning {name} on {data.name}",
        model=MODEL,
        data=str(data),
        epochs=p.finetune_epochs,
        lr=p.finetune_lr,
        batch_size=p.batch_size,
        window_length=p.window_length,
        short_texts="keep",
    )


# --------------------------------------------------------------------------- evaluation


def eval_options(p: Protocol, files: dict, retain_auc: float | None = None):
    from tif_unlearn.evaluate.muse import MuseEvalOptions

    return MuseEvalOptions(
        data_dir=str(files["muse"]),
        retain_auc=retain_auc,
        verbmem_new_tokens=p.gt_tokens,
        knowmem_new_tokens=p.knowmem_new_tokens,
    )


def full_eval(p: Protocol, folder: Path, cache: Path, files: dict) -> dict:
    """``tif eval muse`` on one model folder (PrivLeak from its AUC in :func:`headline`)."""
    from tif_unlearn.evaluate.muse import evaluate_muse
    from tif_unlearn.models import load_model

    options = eval_options(p, files)
    data = {
        str(f.relative_to(files["muse"])): digest(f.read_text())
        for f in sorted(files["muse"].rglob("*.json"))
    }
    signature = {"model": model_digest(folder), "data": data, "recipe": p.recipe()}

    def compute():
        log_step(f"full evaluation of {folder}")
        model, tokenizer = load_model(str(folder))
        started = time.perf_counter()
        results = evaluate_muse(model, tokenizer, options)
        results["eval_seconds"] = round(time.perf_counter() - started, 1)
        return results

    return cached_json(cache, signature, compute)


def headline(results: dict, retain_auc: float | None) -> dict:
    from tif_unlearn.evaluate.tofu import safe_privleak

    summary = {
        k: results["summary"].get(k) for k in (SCORE, "knowmem_forget_f1", UTILITY, "min_k_auc")
    }
    summary["privleak"] = safe_privleak(summary["min_k_auc"], retain_auc) if retain_auc else None
    return summary


def retrained_auc(work: Path, wait_minutes: float = 120) -> float | None:
    """The retrained model's Min-40% AUC (None where PrivLeak cannot divide by it)."""
    path, deadline = work / "eval" / "retrained.json", time.time() + 60 * wait_minutes
    while not path.is_file():
        if time.time() > deadline:
            raise SystemExit("the retrained model's evaluation is missing: run eval:retrained")
        time.sleep(10)
    auc = read_json(path)["result"]["summary"]["min_k_auc"]
    return auc if 0 < auc < 1 else None


def probe(p: Protocol, model, tokenizer, files: dict) -> dict:
    """Per epoch: VerbMem, KnowMem on retain_qa (the two numbers the point is chosen by) and the
    mean probability of the UW and GW tokens of the forget excerpts (`phrases` spans)."""
    from tif_unlearn.evaluate.muse import knowmem, verbmem

    options = eval_options(p, files)
    return {
        SCORE: verbmem(model, tokenizer, options)[SCORE],
        UTILITY: knowmem(model, tokenizer, options, "retain")[UTILITY],
        **token_group_probs(model, tokenizer, files["local"]),
    }


# --------------------------------------------------------------------------- tasks


def run_task(task: str, work: Path, quick: bool, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    p = protocol(quick)
    files = build_data(p, work)
    kind, _, name = task.partition(":")
    if kind == "finetune":
        finetune(p, name, files, work)
    elif kind == "eval":
        full_eval(p, finetune(p, name, files, work), work / "eval" / f"{name}.json", files)
        if name == "finetuned":
            base_probe(p, work, files)
    elif kind == "run":
        unlearning_run(p, name, files, work)
    else:
        raise SystemExit(f"unknown task {task!r}")


def base_probe(p: Protocol, work: Path, files: dict) -> dict:
    from tif_unlearn.models import load_model

    signature = {"model": finetune_signature(p, "finetuned", files), "recipe": p.recipe()}

    def compute():
        model, tokenizer = load_model(str(work / "finetuned"))
        return probe(p, model, tokenizer, files)

    return cached_json(work / "probe" / "finetuned.json", signature, compute)


def unlearning_run(p: Protocol, name: str, files: dict, work: Path) -> dict:
    family, lr, seed = parse_run(name)
    signature = {
        "recipe": p.recipe(),
        "family": list(p.families[family]),
        "lr": lr,
        "seed": seed,
        "target": finetune_signature(p, "finetuned", files),
        "retrained": finetune_signature(p, "retrained", files),
    }
    compute = lambda: train_and_select(p, name, files, work)  # noqa: E731
    return cached_json(runs_dir(p, work) / f"{name}.json", signature, compute)


def unlearn_fields(p: Protocol, name: str, files: dict, target: Path) -> dict:
    family, lr, seed = parse_run(name)
    method, annotations, options = p.families[family]
    return {
        "model": str(target),
        "method": method,
        "forget": str(files["forget" if annotations == "plain" else annotations]),
        "retain": None if method == "ga" else str(files["retain"]),
        "epochs": float(p.epochs),
        "lr": lr,
        "seed": seed,
        "batch_size": p.batch_size,
        "scheduler": "constant",
        "warmup_epochs": 0.0,
        "step_count": "floor",
        "dtype": "float32",  # the same on every machine the protocol resumes on
        "window_length": p.window_length,
        "short_texts": "keep",
        **options,
    }


def train_and_select(p: Protocol, name: str, files: dict, work: Path) -> dict:
    from tif_unlearn.config import UnlearnConfig
    from tif_unlearn.models import load_tokenizer
    from tif_unlearn.train import run_unlearn

    base, auc = base_probe(p, work, files), retrained_auc(work)
    target, out = work / "finetuned", work / "unlearned" / name
    folder = work / "checkpoints" / name  # epoch<e> folders (the run's --out is replaced whole)
    tokenizer, trajectory = load_tokenizer(str(target)), []

    def on_epoch(model, epoch):
        compute = partial(probe, p, model, tokenizer, files)
        numbers = cached_probe(work, name, folder / f"epoch{epoch}", p.recipe(), compute)
        trajectory.append({"epoch": epoch, **numbers})
        log_step(f"{name} epoch {epoch}: {json.dumps(trajectory[-1])}")

    fields = unlearn_fields(p, name, files, target)
    n_forget = len(load_records(files["forget"]))
    ends = epoch_end_steps(n_forget, p.batch_size, p.epochs)
    started = time.time()
    config = UnlearnConfig(out=str(out), overwrite=True, **fields)
    run_unlearn(config, callbacks=[EpochProbe(ends, folder, tokenizer, on_epoch)])
    shutil.rmtree(out)  # the same weights as the last epoch's checkpoint
    minutes = round((time.time() - started) / 60, 1)
    candidates = best_under_floor(trajectory, SCORE, UTILITY, FLOOR * base[UTILITY], False)
    chosen = None
    if candidates:
        epoch = candidates[0]["epoch"]
        results = full_eval(
            p, folder / f"epoch{epoch}", work / "eval" / f"{name}.epoch{epoch}.json", files
        )
        chosen = {"epoch": epoch, **headline(results, auc)}
    shutil.rmtree(folder)  # 0.5 GB per epoch; the point's answers stay in eval/<run>.epoch<e>.json
    return {
        "name": name,
        "machine": machine(),
        "minutes": minutes,
        "command": command_line(
            "unlearn",
            {**fields, "model": "runs/muse_mini/finetuned"},
            f"runs/muse_mini/unlearned/{name}",
        ),
        "trajectory": [{"epoch": 0, **base}, *trajectory],
        "chosen": chosen,
    }


# --------------------------------------------------------------------------- seeds and report


def second_seed_runs(p: Protocol, work: Path) -> list[str]:
    runs = finished_runs(runs_dir(p, work), p.families, p.recipe())
    families = complete_families(p.families, p.runs, runs)
    return second_seeds(families, runs, SCORE, higher_is_better=False)


def summarize(families, runs: dict, finetuned: dict) -> dict:
    """The summary, Pareto frontier and verdict of finished ``runs`` (a seed without a point
    counts as the ``finetuned`` model)."""
    keys = {"verbmem": SCORE, "knowmem_retain": UTILITY}
    summary = family_summary(families, runs, keys, False, finetuned)
    points = {f: (s["verbmem"], s["knowmem_retain"]) for f, s in summary.items() if s}
    frontier = pareto_frontier(points, x_higher=False)
    return {
        "best_under_utility_floor": summary,
        "pareto_frontier": frontier,
        "verdict": verdict(summary, frontier, "verbmem", higher_is_better=False),
    }


def write_report(p: Protocol, work: Path, seconds: float) -> dict:
    runs = finished_runs(runs_dir(p, work), p.families, p.recipe())
    auc = retrained_auc(work, wait_minutes=0)
    base = {
        name: headline(read_json(work / "eval" / f"{name}.json")["result"], auc)
        for name in ("retrained", "finetuned")
    }
    payload = {
        "machine": machine(),
        "protocol": p.recipe(),
        "floor_knowmem_retain": FLOOR * base["finetuned"][UTILITY],
        **summarize(p.families, runs, base["finetuned"]),
        "models": base,
        "runs": runs,
        "wall_minutes_this_call": round(seconds / 60, 1),
    }
    full = p == Protocol()
    write_results(
        "muse_mini.json" if full else "muse_mini_quick.json", payload, RESULTS if full else work
    )
    folder, stem = (RESULTS, "muse_mini") if full else (work, "muse_mini_quick")
    (folder / f"{stem}.md").write_text(markdown_table(payload) + "\n")
    (folder / f"{stem}.png").write_bytes(trajectory_png(payload))
    return payload


def markdown_table(payload: dict) -> str:
    lines = [
        verdict_line(payload["verdict"]),
        "",
        f"Utility floor: KnowMem-retain ≥ {payload['floor_knowmem_retain']:.3f} (0.95 × "
        f"fine-tuned). Pareto frontier: {', '.join(payload['pareto_frontier'])}.",
        "",
        "| family | VerbMem ↓ (mean of 2 seeds) | KnowMem retain | best setting | epoch | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for family, s in payload["best_under_utility_floor"].items():
        if s is None:
            lines.append(f"| {family} | – | – | no checkpoint kept the floor | | |")
            continue
        seeds = "; ".join(
            f"{x['verbmem']:.3f} / {x['knowmem_retain']:.3f}"
            + (" (none above the floor: the fine-tuned model)" if x["epoch"] == 0 else "")
            for x in s["seeds"]
        )
        lines.append(
            f"| {family} | {s['verbmem']:.3f} | {s['knowmem_retain']:.3f} | {s['setting']} | {s['epoch']} | {seeds} |"
        )
    for name, m in payload["models"].items():
        lines.append(f"| ({name}) | {m[SCORE]:.3f} | {m[UTILITY]:.3f} | | | |")
    return "\n".join(lines)


def trajectory_png(payload: dict) -> bytes:
    return trajectories_png(
        payload,
        (SCORE, UTILITY, False),
        ("VerbMem (ROUGE-L F1, lower = more forgotten)", "KnowMem on retain_qa"),
        ("verbmem", "knowmem_retain"),
        floor=payload["floor_knowmem_retain"],
    )
