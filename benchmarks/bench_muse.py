"""MUSE-News-mini (muse_mini.py), protocol v2, as a benchmark of the engine (``SPEC``): the
families, the protocol and its cache keys, fine-tuning, ``tif eval muse``, the per-epoch probe
(VerbMem, KnowMem-retain, UW/GW token probabilities) and the point (the lowest VerbMem whose
probe keeps the KnowMem-retain floor). Data: muse_data.py."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import muse_data
from bench_spec import FLOOR, Labels, Spec, run_fields
from cache import cached_json, digest, model_digest, parse_run, run_name, wait_for_result
from common import cached_training, log_step
from engine import base_probe
from probes import token_group_probs
from selection import best_under_floor

BASE_MODELS = ("finetuned", "retrained")  # the target, and the model never trained on forget
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


def results_stem(p: Protocol) -> str | None:
    return "muse_mini" if p == Protocol() else None


# --------------------------------------------------------------------------- base models


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
        model=muse_data.MODEL,
        data=str(data),
        epochs=p.finetune_epochs,
        lr=p.finetune_lr,
        batch_size=p.batch_size,
        window_length=p.window_length,
        short_texts="keep",
    )


def evaluate_base(p: Protocol, name: str, files: dict, work: Path) -> None:
    """Full evaluation of a base model; the fine-tuned one's epoch-0 probe."""
    full_eval(p, finetune(p, name, files, work), work / "eval" / f"{name}.json", files)
    if name == "finetuned":
        base_probe(SPEC, p, work, files, None)


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


def retrained_auc(p: Protocol, work: Path, wait_minutes: float = 120) -> float | None:
    """The retrained model's Min-40% AUC (None where PrivLeak cannot divide by it)."""
    missing = "the retrained model's evaluation is missing: run eval:retrained"
    results = wait_for_result(work / "eval" / "retrained.json", wait_minutes, missing)
    auc = results["summary"]["min_k_auc"]
    return auc if 0 < auc < 1 else None


def probe(p: Protocol, model, tokenizer, files: dict, reference=None) -> dict:
    """Per epoch: VerbMem, KnowMem on retain_qa (the two numbers the point is chosen by) and the
    mean probability of the UW and GW tokens of the forget excerpts (`phrases` spans)."""
    from tif_unlearn.evaluate.muse import knowmem, verbmem

    options = eval_options(p, files)
    return {
        SCORE: verbmem(model, tokenizer, options)[SCORE],
        UTILITY: knowmem(model, tokenizer, options, "retain")[UTILITY],
        **token_group_probs(model, tokenizer, files["local"]),
    }


# --------------------------------------------------------------------------- one run


def run_signature(p: Protocol, name: str, files: dict) -> dict:
    family, lr, seed = parse_run(name)
    return {
        "recipe": p.recipe(),
        "family": list(p.families[family]),
        "lr": lr,
        "seed": seed,
        "target": finetune_signature(p, "finetuned", files),
        "retrained": finetune_signature(p, "retrained", files),
    }


def unlearn_fields(p: Protocol, name: str, files: dict, target: Path) -> dict:
    settings = {
        "scheduler": "constant",
        "warmup_epochs": 0.0,
        "step_count": "floor",
        "dtype": "float32",  # the same on every machine the protocol resumes on
        "window_length": p.window_length,
        "short_texts": "keep",
    }
    return run_fields(p, name, files, target, settings)


def choose(p, files, name, trajectory, base, folder, work, auc) -> dict | None:
    """The lowest-VerbMem epoch whose probe keeps FLOOR × the fine-tuned model's KnowMem-retain,
    fully evaluated; None if none does."""
    floor = FLOOR * base[UTILITY]
    candidates = best_under_floor(trajectory, SCORE, UTILITY, floor, higher_is_better=False)
    if not candidates:
        return None
    epoch = candidates[0]["epoch"]
    cache = work / "eval" / f"{name}.epoch{epoch}.json"
    return {"epoch": epoch, **headline(full_eval(p, folder / f"epoch{epoch}", cache, files), auc)}


SPEC = Spec(
    name="muse_mini",
    base_models=BASE_MODELS,
    reference="retrained",
    keys={"verbmem": SCORE, "knowmem_retain": UTILITY},
    higher_is_better=False,
    plot_axes=(SCORE, UTILITY, False),
    labels=Labels(
        score="VerbMem ↓",
        utility="KnowMem retain",
        seeds="seeds",
        floor="KnowMem-retain",
        floor_key="floor_knowmem_retain",
        formats=(".3f", ".3f"),
        x_axis="VerbMem (ROUGE-L F1, lower = more forgotten)",
        y_axis="KnowMem on retain_qa",
    ),
    protocol=protocol,
    build_data=muse_data.build_data,
    finetune=finetune,
    finetune_signature=finetune_signature,
    evaluate_base=evaluate_base,
    reference_data=retrained_auc,
    probe=probe,
    headline=headline,
    run_signature=run_signature,
    unlearn_fields=unlearn_fields,
    choose=choose,
    results_stem=results_stem,
    work_name=lambda **options: "muse_mini",
)
