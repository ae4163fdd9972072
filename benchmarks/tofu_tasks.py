"""The tasks of TOFU-mini v2 (see tofu_mini.py): fine-tuning, evaluation, one unlearning run
with its per-epoch probe, second seeds, and the report. Each task runs in its own one-thread
process and caches what it finishes."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import tofu_pair
from common import RESULTS, cached_training, log_step, machine, write_results
from trajectory import (
    EpochProbe,
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
    walk_order,
    write_records,
)

from tif_unlearn.data.loaders import load_records
from tif_unlearn.data.records import QARecord
from tif_unlearn.data.tofu import default_tofu_dir, load_tofu_split

QA_PER_AUTHOR = tofu_pair.QA_PER_AUTHOR
RUNS_DIR = RESULTS / "tofu_mini_runs"
UTILITY_SETS = ("retain", "real_authors", "world_facts")
# the model never trained on the forget set, and the fine-tuned target; the retain model first:
# the target's evaluation waits for it (with --workers 1 it would wait for ever)
BASE_MODELS = ("retain", "finetuned")
FLOOR = 0.95  # a run's point must keep this fraction of the fine-tuned model's utility
GENERATION_LENGTHS = (64, 96, 128, 160, 200)  # the first that truncates < 2 % is used

# family -> (method, forget annotations, method options); every family runs at every lr.
FAMILIES = {
    "tif": ("tif", "gpt4o", {}),
    "simnpo": ("simnpo", "plain", {}),
    "npo": ("npo", "plain", {}),
    "graddiff": ("graddiff", "plain", {}),
    "ga": ("ga", "plain", {}),
    "idkdpo": ("idkdpo", "plain", {}),
    "tif-npo": ("npo", "gpt4o", {"targeted": True}),
    "tif-simnpo": ("simnpo", "gpt4o", {"targeted": True}),
    "tif-centered": ("tif", "gpt4o", {"lpl_space": "centered"}),
    "tif-graddiff": ("graddiff", "gpt4o", {"targeted": True}),
    # TIF with the best local identifier: `learned`, fitted on forget05's other 8 authors.
    "tif-learned": ("tif", "learned", {}),
}


@dataclass
class Protocol:
    retain_authors: int = 10
    finetune_epochs: float = 5.0
    finetune_lr: float = 2e-4
    epochs: int = 10
    batch_size: int = 4
    grad_accum: int = 8
    lrs: tuple[float, ...] = (1e-4, 3e-4)
    probe_items: int = 20  # per utility set, every epoch
    utility_items: int = 40  # per utility set, full evaluation
    max_items: int | None = None  # cap every set (quick runs only)
    generation_tokens: int | None = None  # fixed answer length (v3); None: generation_length
    families: dict = field(default_factory=lambda: dict(FAMILIES))
    selection: str = "fq-walk"  # how the point is chosen (see choose_point); part of the cache key
    minutes_per_run: float = 60.0  # measured: ~40 min of epochs + the FQ walk, 2 runs on 2 cores
    minutes_per_finetune: float = 30.0
    # which authors are forgotten (tofu_pair.py), and their UW spans when not the paper's; not
    # in the recipe: run signatures name them (run_signature) and the data digests cover them
    forget_authors: tuple[int, ...] = tofu_pair.DEFAULT_AUTHORS
    annotations: str | None = None

    @property
    def runs(self) -> dict[str, tuple[str, float, int]]:
        """run name -> (family, lr, seed) for the first wave (seed 0)."""
        return {
            run_name(family, lr, 0): (family, lr, 0) for lr in self.lrs for family in self.families
        }

    def recipe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in NOT_IN_RECIPE}

    @property
    def on_forget01(self) -> bool:
        return self.forget_authors == tofu_pair.DEFAULT_AUTHORS and self.annotations is None


# not in run signatures; generation_tokens is in every evaluation's cache key (its options)
NOT_IN_RECIPE = (
    "minutes_per_run",
    "minutes_per_finetune",
    "forget_authors",
    "annotations",
    "generation_tokens",
)


def add_options(parser) -> list[str]:
    """TOFU-mini's own command-line options (run_protocol passes them to every task)."""
    parser.add_argument(
        "--forget-authors",
        help="forget these authors instead of forget01's 198,199 (TOFU numbers, 0-199; "
        "authors 10-19 and 180-199 have the perturbed answers FQ needs)",
    )
    parser.add_argument(
        "--annotations",
        help="UW spans of the forget authors' answers (JSON Lines); default: the paper's "
        "GPT-4o spans, which cover authors 190-199",
    )
    return ["forget_authors", "annotations"]


def protocol(quick: bool, forget_authors: str | None = None, annotations: str | None = None):
    pair = {"annotations": annotations}
    if forget_authors:
        pair["forget_authors"] = tofu_pair.parse_authors(forget_authors)
    if not quick:
        return Protocol(**pair)
    families = {k: FAMILIES[k] for k in ("tif", "npo")}
    return Protocol(
        **pair,
        retain_authors=2,
        finetune_epochs=1.0,
        epochs=2,
        grad_accum=2,
        lrs=(1e-4,),
        probe_items=4,
        utility_items=4,
        max_items=8,
        families=families,
        minutes_per_run=5.0,
        minutes_per_finetune=2.0,
    )


def stem(p: Protocol) -> str:
    """``tofu_mini`` on forget01, ``tofu_mini_authors188-189`` on other forget authors."""
    return "tofu_mini" if p.on_forget01 else f"tofu_mini_{tofu_pair.label(p.forget_authors)}"


def work_name(**options) -> str:
    """The default --work folder's name: other forget authors never share forget01's cache."""
    return stem(protocol(False, **options))


def results_stem(p: Protocol) -> str | None:
    """:func:`stem` for the full protocol (its results are kept in results/), None for a
    reduced one (its results stay in --work)."""
    full = replace(p, forget_authors=tofu_pair.DEFAULT_AUTHORS, annotations=None) == Protocol()
    return stem(p) if full else None


def runs_dir(p: Protocol, work: Path) -> Path:
    kept = results_stem(p)
    return RESULTS / f"{kept}_runs" if kept else work / "runs"


# --------------------------------------------------------------------------- data and models


def build_data(p: Protocol, work: Path) -> dict[str, Path]:
    """Retain / forget / train files and the UW-annotated forget set under ``work/data``; for
    other forget authors than forget01's, the evaluator's data folder too (``tofu_dir``)."""
    full = load_tofu_split("full")
    forget_rows = tofu_pair.forget_rows(full, p.forget_authors, p.retain_authors)
    questions = [r["question"] for r in forget_rows]
    if p.on_forget01 and questions != [r["question"] for r in load_tofu_split("forget01")]:
        raise SystemExit("TOFU full.json does not end with forget01: unexpected data")
    files = {}
    if not p.on_forget01:  # first, as it checks that TOFU can evaluate these authors
        files["tofu_dir"] = tofu_pair.eval_data_dir(p.forget_authors, forget_rows, work)
    retain_rows = full[: p.retain_authors * QA_PER_AUTHOR]
    gpt4o = tofu_pair.gpt4o_records(p.forget_authors, forget_rows, p.annotations)
    sets = {
        "retain": retain_rows,
        "forget": forget_rows,
        "train": retain_rows + forget_rows,
    }
    for name, rows in sets.items():
        files[name] = work / "data" / f"{name}.jsonl"
        write_records([QARecord(r["question"], r["answer"]) for r in rows], files[name])
    files["gpt4o"] = work / "data" / "forget.gpt4o.jsonl"
    write_records(gpt4o, files["gpt4o"])
    if "tif-learned" in p.families:
        files["learned"] = learned_file(p, forget_rows, work)
    return files


def learned_file(p: Protocol, forget_rows: list[dict], work: Path) -> Path:
    """``work/data/forget.learned.jsonl`` (:func:`learned_annotations`), fitted again only when
    the learned identifier's defaults, its feature version or the gold file changed."""
    from tif_unlearn.identify.features import FEATURE_VERSION
    from tif_unlearn.identify.learned_model import LearnedConfig

    gold = default_tofu_dir().parent / tofu_pair.FORGET05_SPANS
    signature = {
        "config": asdict(LearnedConfig()),
        "feature_version": FEATURE_VERSION,
        "gold": digest(gold.read_text(encoding="utf-8")),
    }
    if not p.on_forget01:
        signature["forget_authors"] = list(p.forget_authors)
    path, key = work / "data" / "forget.learned.jsonl", work / "data" / "forget.learned.key.json"

    def compute() -> dict:
        write_records(learned_annotations(p.forget_authors, forget_rows), path)
        return {"file": path.name}

    if not path.is_file():
        key.unlink(missing_ok=True)
    cached_json(key, signature, compute)
    return path


def learned_annotations(authors: tuple[int, ...], forget_rows: list[dict]) -> list[QARecord]:
    """The forget answers annotated by `learned` fitted on the GPT-4o spans of forget05's
    other authors (for forget01: its first 8; forget05 = the last 10 authors, forget01 = the
    last 2): held out, unlike the packaged model, which saw forget01's authors."""
    from tif_unlearn.identify import identify
    from tif_unlearn.identify.learned import fit_learned

    model = fit_learned(tofu_pair.learned_training_records(authors))
    records = [QARecord(r["question"], r["answer"]) for r in forget_rows]
    result = identify("learned", records, model=model, progress=False)
    if result.failures:
        raise SystemExit(f"learned failed on {len(result.failures)} answers")
    return result.annotated()


def finetune(p: Protocol, name: str, files: dict, work: Path) -> Path:
    data = files["train" if name == "finetuned" else "retain"]
    signature = finetune_signature(p, name, files)
    return cached_training(
        "finetune",
        work / name,
        signature,
        f"fine-tuning {name} on {data.name}",
        model="smollm2-135m",
        data=str(data),
        epochs=p.finetune_epochs,
        lr=p.finetune_lr,
        batch_size=p.batch_size,
    )


def finetune_signature(p: Protocol, name: str, files: dict) -> dict:
    data = files["train" if name == "finetuned" else "retain"]
    recipe = (p.finetune_epochs, p.finetune_lr, p.batch_size)
    return {"data": digest(data.read_text()), "recipe": recipe}


# --------------------------------------------------------------------------- evaluation


def eval_options(p: Protocol, files: dict, utility_items: int, max_new_tokens: int = 64, sets=None):
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


def generation_length(p: Protocol, files: dict, tokenizer) -> tuple[int, float]:
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


def full_eval(p: Protocol, files: dict, folder: Path, cache: Path, sets=None) -> dict:
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


def retain_reference(p: Protocol, work: Path, wait_minutes: float = 120):
    """The retain model's forget-set numbers (waits for eval:retain, which may be running in
    the other worker)."""
    from tif_unlearn.evaluate.tofu_reference import reference_from_results

    path, deadline = work / "eval" / "retain.json", time.time() + 60 * wait_minutes
    while not path.is_file():
        if time.time() > deadline:
            raise SystemExit("the retain model's evaluation is missing: run eval:retain first")
        time.sleep(10)
    return reference_from_results(read_json(path)["result"], str(work / "retain"))


def probe(p: Protocol, model, tokenizer, files: dict, reference) -> dict:
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


# --------------------------------------------------------------------------- tasks


def run_task(task: str, work: Path, quick: bool, threads: int, **options) -> None:
    import torch

    torch.set_num_threads(threads)
    p = protocol(quick, **options)
    files = build_data(p, work)
    kind, _, name = task.partition(":")
    if kind == "finetune":
        finetune(p, name, files, work)
    elif kind == "eval":
        evaluate_base_model(p, name, files, work)
    elif kind == "run":
        unlearning_run(p, name, files, work)
    else:
        raise SystemExit(f"unknown task {task!r}")


def evaluate_base_model(p: Protocol, name: str, files: dict, work: Path) -> None:
    """Full evaluation of the retain or fine-tuned model (the latter against the retain model,
    with its epoch-0 probe: the start of every trajectory)."""
    folder = finetune(p, name, files, work)
    if name == "retain":
        full_eval(p, files, folder, work / "eval" / "retain.json")
        return
    full_eval(p, files, folder, work / "eval" / "finetuned.json")
    base_probe(p, work, files, retain_reference(p, work))


def base_probe(p: Protocol, work: Path, files: dict, reference) -> dict:
    from tif_unlearn.models import load_model

    signature = {"model": finetune_signature(p, "finetuned", files), "recipe": p.recipe()}

    def compute():
        model, tokenizer = load_model(str(work / "finetuned"))
        return probe(p, model, tokenizer, files, reference)

    return cached_json(work / "probe" / "finetuned.json", signature, compute)


def run_signature(p: Protocol, name: str, files: dict) -> dict:
    family, lr, seed = parse_run(name)
    return {
        "recipe": p.recipe(),
        "family": list(p.families[family]),
        "lr": lr,
        "seed": seed,
        "target": finetune_signature(p, "finetuned", files),
        "retain_model": finetune_signature(p, "retain", files),
        **spans_signature(p, family, files),
    }


def spans_signature(p: Protocol, family: str, files: dict) -> dict:
    """The digest of the UW spans a family trains on, where they can change: the learned
    identifier's, and any on other authors than forget01's (none for forget01's fixed GPT-4o
    file or plain families, so that their finished runs stay valid)."""
    spans = p.families[family][1]
    if spans == "learned":
        return {"learned_annotations": digest(files["learned"].read_text(encoding="utf-8"))}
    if p.on_forget01:
        return {}
    return {
        "forget_authors": list(p.forget_authors),
        **(
            {"gpt4o_annotations": digest(files["gpt4o"].read_text(encoding="utf-8"))}
            if spans == "gpt4o"
            else {}
        ),
    }


def unlearning_run(p: Protocol, name: str, files: dict, work: Path) -> dict:
    """Train with a probe at every epoch end, then pick and fully evaluate its point. The
    result is kept in RUNS_DIR (committed), so a new machine does not redo the run."""
    signature = run_signature(p, name, files)
    compute = lambda: train_and_select(p, name, files, work)  # noqa: E731
    return cached_json(runs_dir(p, work) / f"{name}.json", signature, compute)


def train_and_select(p: Protocol, name: str, files: dict, work: Path) -> dict:
    reference = retain_reference(p, work)
    base = base_probe(p, work, files, reference)
    finetuned_full = headline(read_json(work / "eval" / "finetuned.json")["result"], reference)
    folder = work / "checkpoints" / name  # epoch<e> folders (the run's --out is replaced whole)
    started = time.time()
    trajectory = train_with_probes(p, name, files, work, folder, reference)
    minutes = round((time.time() - started) / 60, 1)
    floor_mu = FLOOR * finetuned_full["model_utility"]
    chosen = choose_point(p, files, name, trajectory, floor_mu, folder, work, reference)
    shutil.rmtree(folder)  # 0.5 GB per epoch; the point's answers stay in eval/<run>.epoch<e>.json
    return {
        "name": name,
        "machine": machine(),
        "minutes": minutes,
        "command": tofu_command(p, name, files),
        "trajectory": [{"epoch": 0, **base}, *trajectory],
        "chosen": chosen,
    }


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
        "grad_accum": p.grad_accum,
        "warmup_epochs": 1.0,
        "weight_decay": 0.01,
        "scheduler": "linear",
        "step_count": "floor",
        "dtype": "float32",  # the same on every machine the protocol resumes on
        **options,
    }


def tofu_command(p: Protocol, name: str, files: dict) -> str:
    fields = unlearn_fields(p, name, files, Path("runs/tofu_mini/finetuned"))
    return command_line("unlearn", fields, f"runs/tofu_mini/unlearned/{name}")


def train_with_probes(p: Protocol, name: str, files: dict, work: Path, folder: Path, reference):
    from tif_unlearn.config import UnlearnConfig
    from tif_unlearn.models import load_tokenizer
    from tif_unlearn.train import run_unlearn

    target = work / "finetuned"
    tokenizer = load_tokenizer(str(target))
    n_forget = len(load_records(files["forget"]))
    ends = epoch_end_steps(n_forget, p.batch_size * p.grad_accum, p.epochs)
    trajectory = []

    def on_epoch(model, epoch):
        compute = partial(probe, p, model, tokenizer, files, reference)
        numbers = cached_probe(work, name, folder / f"epoch{epoch}", p.recipe(), compute)
        point = {"epoch": epoch, **numbers}
        trajectory.append(point)
        log_step(f"{name} epoch {epoch}: " + json.dumps({k: round(v, 4) for k, v in point.items()}))

    log_step(f"unlearning {name}")
    out = work / "unlearned" / name
    config = UnlearnConfig(out=str(out), overwrite=True, **unlearn_fields(p, name, files, target))
    run_unlearn(config, callbacks=[EpochProbe(ends, folder, tokenizer, on_epoch)])
    shutil.rmtree(out)  # the same weights as the last epoch's checkpoint
    return trajectory


def choose_point(p, files, name, trajectory, floor_mu, folder, work, reference):
    """The best-FQ epoch whose full Model Utility ≥ ``floor_mu`` (v2: FLOOR × the fine-tuned
    model's): epochs are
    evaluated in ``walk_order`` (best probe FQ first; the probe's FQ is the full evaluation's),
    the utility sets alone first, until one keeps the floor, which then gets the full
    evaluation; None if none does."""
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


# --------------------------------------------------------------------------- seeds and report


def second_seed_runs(p: Protocol, work: Path) -> list[str]:
    runs = finished_runs(runs_dir(p, work), p.families, p.recipe())
    families = complete_families(p.families, p.runs, runs)
    return second_seeds(families, runs, "forget_quality", higher_is_better=True)


def write_report(p: Protocol, work: Path, seconds: float) -> dict:
    runs = finished_runs(runs_dir(p, work), p.families, p.recipe())
    reference = retain_reference(p, work, wait_minutes=0)
    base = {
        name: headline(read_json(work / "eval" / f"{name}.json")["result"], reference)
        for name in ("retain", "finetuned")
    }
    keys = {"fq": "forget_quality", "mu": "model_utility"}
    summary = family_summary(p.families, runs, keys, True, base["finetuned"])
    points = {f: (s["fq"], s["mu"]) for f, s in summary.items() if s}
    frontier = pareto_frontier(points, x_higher=True)
    payload = {
        "machine": machine(),
        "protocol": p.recipe(),
        "floor_mu": FLOOR * base["finetuned"]["model_utility"],
        "best_under_utility_floor": summary,
        "pareto_frontier": frontier,
        "verdict": verdict(summary, frontier, "fq", higher_is_better=True),
        "models": base,
        "runs": runs,
        "wall_minutes_this_call": round(seconds / 60, 1),
    }
    if not p.on_forget01:
        payload["forget_authors"] = list(p.forget_authors)
        payload["annotations"] = p.annotations or "GPT-4o (the paper's forget05 file)"
    kept = results_stem(p)
    folder, name = (RESULTS, kept) if kept else (work, "tofu_mini_quick")
    write_results(f"{name}.json", payload, folder)
    (folder / f"{name}.md").write_text(markdown_table(payload) + "\n")
    (folder / f"{name}.png").write_bytes(trajectory_png(payload))
    return payload


ROUGE_PARTS = ("retain_rouge", "real_authors_rouge", "world_facts_rouge")


def markdown_table(payload: dict) -> str:
    """One row per family (and the two base models), with the generation ROUGE parts of Model
    Utility: the smallest of its nine numbers decides the harmonic mean."""
    lines = [
        verdict_line(payload["verdict"]),
        "",
        f"Utility floor: MU ≥ {payload['floor_mu']:.3f} (0.95 × fine-tuned). "
        f"Pareto frontier: {', '.join(payload['pareto_frontier'])}.",
        "",
        "| family | FQ (mean of 2 seeds) | MU | best setting | epoch "
        "| ROUGE retain / real authors / world facts (seed 0) | seeds (FQ / MU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for family, s in payload["best_under_utility_floor"].items():
        if s is None:
            lines.append(f"| {family} | – | – | no checkpoint kept the floor | | | |")
            continue
        seeds = "; ".join(
            f"{x['fq']:.2e} / {x['mu']:.3f}"
            + (" (none above the floor: the fine-tuned model)" if x["epoch"] == 0 else "")
            for x in s["seeds"]
        )
        row = f"| {family} | {s['fq']:.2e} | {s['mu']:.3f} | {s['setting']} | {s['epoch']} |"
        lines.append(f"{row} {rouge_parts(payload['runs'][s['run']]['chosen'])} | {seeds} |")
    for name, m in payload["models"].items():
        row = f"| ({name}) | {m['forget_quality']:.2e} | {m['model_utility']:.3f} | | |"
        lines.append(f"{row} {rouge_parts(m)} | |")
    return "\n".join(lines)


def rouge_parts(point: dict) -> str:
    return " / ".join(f"{point[k]:.3f}" for k in ROUGE_PARTS)


def trajectory_png(payload: dict) -> bytes:
    return trajectories_png(
        payload,
        ("fq", "mu_proxy", True),
        (
            "Forget Quality (KS p-value against the retain model, log)",
            "lines: utility proxy per epoch (MU without ROUGE); markers: MU",
        ),
        ("fq", "mu"),
        floor=payload["floor_mu"],
    )
