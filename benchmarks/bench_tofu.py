"""TOFU-mini (tofu_mini.py), protocol v2, as a benchmark of the engine (``SPEC``): the families,
the protocol and its cache keys, the base models' fine-tuning and evaluation, one run's
`tif unlearn` fields. Data: tofu_pair.py; evaluation: tofu_eval.py."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import tofu_eval
import tofu_pair
from bench_spec import Labels, Spec, run_fields
from cache import digest, parse_run, run_name
from common import cached_training
from engine import base_probe

# the model never trained on the forget set, and the fine-tuned target; the retain model first:
# the target's evaluation waits for it (with --workers 1 it would wait for ever)
BASE_MODELS = ("retain", "finetuned")

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
    """TOFU-mini's own command-line options (the engine passes them to every task)."""
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


def extra_payload(p: Protocol) -> dict:
    if p.on_forget01:
        return {}
    return {
        "forget_authors": list(p.forget_authors),
        "annotations": p.annotations or "GPT-4o (the paper's forget05 file)",
    }


# --------------------------------------------------------------------------- base models


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


def evaluate_base(p: Protocol, name: str, files: dict, work: Path) -> None:
    """Full evaluation of the retain or fine-tuned model (the latter against the retain model,
    with its epoch-0 probe: the start of every trajectory)."""
    folder = finetune(p, name, files, work)
    tofu_eval.full_eval(p, files, folder, work / "eval" / f"{name}.json")
    if name == "finetuned":
        base_probe(SPEC, p, work, files, tofu_eval.retain_reference(p, work))


# --------------------------------------------------------------------------- one run


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


def unlearn_fields(p: Protocol, name: str, files: dict, target: Path) -> dict:
    settings = {
        "grad_accum": p.grad_accum,
        "warmup_epochs": 1.0,
        "weight_decay": 0.01,
        "scheduler": "linear",
        "step_count": "floor",
        "dtype": "float32",  # the same on every machine the protocol resumes on
    }
    return run_fields(p, name, files, target, settings)


SPEC = Spec(
    name="tofu_mini",
    base_models=BASE_MODELS,
    reference="retain",
    keys={"fq": "forget_quality", "mu": "model_utility"},
    higher_is_better=True,
    plot_axes=("fq", "mu_proxy", True),
    labels=Labels(
        score="FQ",
        utility="MU",
        seeds="seeds (FQ / MU)",
        floor="MU",
        floor_key="floor_mu",
        formats=(".2e", ".3f"),
        x_axis="Forget Quality (KS p-value against the retain model, log)",
        y_axis="lines: utility proxy per epoch (MU without ROUGE); markers: MU",
        extra_column=(
            "ROUGE retain / real authors / world facts (seed 0)",
            tofu_eval.rouge_parts,
        ),
    ),
    protocol=protocol,
    build_data=tofu_pair.build_data,
    finetune=finetune,
    finetune_signature=finetune_signature,
    evaluate_base=evaluate_base,
    reference_data=tofu_eval.retain_reference,
    probe=tofu_eval.probe,
    headline=tofu_eval.headline,
    run_signature=run_signature,
    unlearn_fields=unlearn_fields,
    choose=tofu_eval.choose_run_point,
    results_stem=results_stem,
    work_name=work_name,
    add_options=add_options,
    extra_payload=extra_payload,
)
