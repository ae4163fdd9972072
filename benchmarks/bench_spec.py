"""What an efficacy benchmark is to the engine (engine.py): a :class:`Spec` holds its data,
models, evaluation and run hooks, the result keys of its score and utility, the direction of
the score, and the labels of its table and plot. ``bench_tofu.SPEC`` and ``bench_muse.SPEC``
are the two."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cache import parse_run
from common import RESULTS

FLOOR = 0.95  # a run's point must keep this fraction of the fine-tuned model's utility


@dataclass(frozen=True)
class Labels:
    """The words of a benchmark's table and plot."""

    score: str  # table column of the score ("FQ")
    utility: str  # table column of the utility ("MU")
    seeds: str  # table column of the seeds' points
    floor: str  # the utility in "Utility floor: MU ≥ ..."
    floor_key: str  # the floor's key in the results file
    formats: tuple[str, str]  # of the score and the utility
    x_axis: str
    y_axis: str
    # an extra table column (title, cell of a point) before the seeds, or None
    extra_column: tuple[str, Callable[[dict], str]] | None = None


@dataclass(frozen=True)
class Spec:
    """A benchmark. The hooks take the benchmark's protocol ``p`` (a dataclass with ``runs``,
    ``families``, ``epochs``, ``recipe()`` and the estimate's ``minutes_per_*``), its data
    ``files`` (name -> path) and the ``work`` folder."""

    name: str  # results and work folder stem ("tofu_mini")
    base_models: tuple[str, ...]  # fine-tuned and evaluated first ("finetuned" among them)
    reference: str  # the base model that never saw the forget set
    keys: dict[str, str]  # summary name -> result key: the score first, the utility second
    higher_is_better: bool  # the score's direction
    plot_axes: tuple[str, str, bool]  # the probe's (x key, y key, log x) along a trajectory
    labels: Labels
    protocol: Callable  # (quick, **options) -> p
    build_data: Callable  # (p, work) -> files
    finetune: Callable  # (p, name, files, work) -> model folder
    finetune_signature: Callable  # (p, name, files) -> dict
    evaluate_base: Callable  # (p, name, files, work): a base model's task "eval:<name>"
    reference_data: Callable  # (p, work, wait_minutes=120): what probes and headlines compare to
    probe: Callable  # (p, model, tokenizer, files, reference) -> a checkpoint's cheap numbers
    headline: Callable  # (results, reference) -> a full evaluation's table numbers
    run_signature: Callable  # (p, name, files) -> a run's cache key
    unlearn_fields: Callable  # (p, name, files, target) -> UnlearnConfig fields
    choose: Callable  # (p, files, name, trajectory, base, folder, work, reference) -> point
    results_stem: Callable  # (p) -> the stem of results/ files, None for a reduced protocol
    work_name: Callable  # (**options) -> the default work folder's name
    add_options: Callable | None = None  # (parser) -> the names of the benchmark's own options
    extra_payload: Callable | None = None  # (p) -> more results fields

    @property
    def score(self) -> str:
        return next(iter(self.keys.values()))

    @property
    def utility(self) -> str:
        return list(self.keys.values())[1]


def runs_dir(spec: Spec, p, work: Path) -> Path:
    """Finished runs: committed in ``results/<stem>_runs`` for the full protocol, else under
    ``work``."""
    kept = spec.results_stem(p)
    return RESULTS / f"{kept}_runs" if kept else work / "runs"


def command_line(command: str, fields: dict, out: str) -> str:
    """The ``tif`` command equivalent to a config's ``fields``."""
    flags = []
    for key, value in fields.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag} {value}")
    return f"tif {command} " + " ".join(flags) + f" --out {out}"


def run_fields(p, name: str, files: dict, target: Path, settings: dict) -> dict:
    """``tif unlearn``'s fields for run ``name`` from the model ``target``: those of every
    benchmark, then the benchmark's ``settings``, then the family's options (the order of the
    recorded commands)."""
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
        **settings,
        **options,
    }


def run_command(spec: Spec, p, name: str, files: dict) -> str:
    """The ``tif unlearn`` command of run ``name``, as recorded in its results."""
    fields = spec.unlearn_fields(p, name, files, Path(f"runs/{spec.name}/finetuned"))
    return command_line("unlearn", fields, f"runs/{spec.name}/unlearned/{name}")
