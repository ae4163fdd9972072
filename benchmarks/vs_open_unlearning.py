"""Benchmark: `tif eval tofu` against open-unlearning's TOFU evaluator, side by side.

Both evaluate the same SmolLM2-135M-Instruct weights on the same TOFU sets (forget, holdout,
retain, real authors, world facts; 200 new tokens), started together, one torch thread each,
each pinned to its own core (``--sequential``: one after the other). Writes wall time, peak RSS
(of each process tree's largest process), and per-item agreement (Pearson r and the largest
difference of answer probabilities and truth ratios; identical generations) to
``results/vs_open_unlearning.json``.

open-unlearning is not a dependency: pass a checkout and its environment's Python (set-up:
docs/open-unlearning.md, "Setting up open-unlearning offline"). Its model config is written here in
the ChatML pattern of its Qwen2.5 configs, with SmolLM2's own default system prompt (the one
our evaluator gets from the model's chat template), so both see the same prompts; its TOFU
reads come from the local JSON files (ou_launch.py).

Precision (``--precision``): ``best`` runs each tool at its own best precision on this CPU: ours
with ``--dtype auto`` (bfloat16 where the CPU has AVX-512-BF16/AMX, else float32), open-
unlearning in bfloat16 (its configs' default) where bf16 is fast and in float32 elsewhere (a
bf16 matmul without those instructions is ~100x slower); ``float32`` runs both in float32;
``both`` (default) runs ``best`` then ``float32``. Each pair is one row of the results file,
with the machine's CPU flags; rows of other CPUs or precisions already in the file are kept.
Usage: python benchmarks/vs_open_unlearning.py --ou-checkout DIR --ou-python PY
       [--precision best|float32|both] [--quick N] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import RESULTS, log_step, machine, write_results

HERE = Path(__file__).resolve().parent
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
MODEL_YAML = """model_args:
  pretrained_model_name_or_path: "{folder}"
  attn_implementation: sdpa
  torch_dtype: {dtype}
tokenizer_args:
  pretrained_model_name_or_path: "{folder}"
template_args:
  apply_chat_template: true
  system_prompt: "{system}"
  system_prompt_with_special_tokens: "<|im_start|>system\\n{system}<|im_end|>\\n"
  user_start_tag: "<|im_start|>user\\n"
  user_end_tag: "<|im_end|>\\n"
  asst_start_tag: "<|im_start|>assistant\\n"
  asst_end_tag: "<|im_end|>\\n"
"""
TOFU_FILES = ("{f}", "{f}_perturbed", "holdout{n}", "retain_perturbed", "real_authors_perturbed",
              "world_facts_perturbed")  # fmt: skip


def model_view(source: Path, folder: Path) -> Path:
    """Our converted model folder as transformers 4.45 (open-unlearning's pin) reads it:
    ``rope_theta`` at the top of config.json, a fast GPT-2 tokenizer class, the chat template
    inside tokenizer_config.json; the weights are linked, not copied."""
    folder.mkdir(parents=True, exist_ok=True)
    config = json.loads((source / "config.json").read_text())
    config["rope_theta"] = config.get("rope_parameters", {}).get("rope_theta", 10000.0)
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    tokenizer = json.loads((source / "tokenizer_config.json").read_text())
    tokenizer["tokenizer_class"] = "GPT2TokenizerFast"
    tokenizer["chat_template"] = (source / "chat_template.jinja").read_text()
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer, indent=1))
    for name in ("model.safetensors", "tokenizer.json", "generation_config.json"):
        target = folder / name
        if not target.exists():
            target.symlink_to(source / name)
    return folder


def tofu_folder(source: Path, folder: Path, forget: str, items: int | None) -> Path:
    """The TOFU files both tools read (JSON lines, as on the hub); with ``items``, the first N
    rows of each."""
    folder.mkdir(parents=True, exist_ok=True)
    n = forget.removeprefix("forget")
    for pattern in TOFU_FILES:
        name = pattern.format(f=forget, n=n) + ".json"
        rows = (source / name).read_text().splitlines(keepends=True)
        (folder / name).write_text("".join(rows[:items] if items else rows))
    return folder


PRECISIONS = ("best", "float32")


def tool_dtypes(precision: str, fast_bf16: bool) -> dict[str, str]:
    """The ``--dtype`` we are given and the ``torch_dtype`` open-unlearning is given for a
    precision setting: ``best`` is ours ``auto`` and theirs bfloat16 (its default) where bf16
    is fast, else float32; ``float32`` is float32 for both."""
    if precision == "float32":
        return {"ours": "float32", "open_unlearning": "float32"}
    return {"ours": "auto", "open_unlearning": "bfloat16" if fast_bf16 else "float32"}


def commands(args, dtypes: dict, work: Path, paths: tuple[Path, Path, Path]) -> dict:
    model, view, data = paths
    configs = work / "hydra"
    (configs / "model").mkdir(parents=True, exist_ok=True)
    yaml = MODEL_YAML.format(folder=view, dtype=dtypes["open_unlearning"], system=SYSTEM)
    (configs / "model" / "SmolLM2-135M-Instruct.yaml").write_text(yaml)
    n = args.forget_split.removeprefix("forget")
    ours = [sys.executable, "-m", "tif_unlearn.cli", "eval", "tofu", "--model", str(model)]
    ours += ["--data-dir", str(data), "--forget-split", args.forget_split, "--threads", "1"]
    ours += ["--max-new-tokens", "200", "--dtype", dtypes["ours"]]
    ours += ["--out", str(work / "ours.json")]
    theirs = [args.ou_python, str(HERE / "ou_launch.py"), str(args.ou_checkout)]
    theirs += ["model=SmolLM2-135M-Instruct", f"hydra.searchpath=[file://{configs}]"]
    theirs += ["model.model_args.device_map=cpu", f"eval.tofu.forget_split={args.forget_split}"]
    theirs += [f"eval.tofu.holdout_split=holdout{n}"]
    theirs += ["task_name=vs_tif", f"paths.output_dir={work / 'ou'}", "eval.tofu.overwrite=true"]
    return {"ours": ours, "open_unlearning": theirs}


def run_all(cmds: dict[str, list[str]], data: Path, sequential: bool, logs: Path) -> dict:
    """Start every command (together unless ``sequential``), core i for the i-th, one thread
    each; wall time and peak RSS of each (os.wait4's ru_maxrss: its largest process)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOFU_JSON_DIR": str(data)}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    results, running = {}, {}
    for core, (name, cmd) in enumerate(cmds.items()):
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed when the process ends
        pinned = ["taskset", "-c", str(core % os.cpu_count())] + cmd
        running[name] = (subprocess.Popen(pinned, stdout=log, stderr=log, env=env), time.time())
        log_step(f"started {name}")
        if sequential:
            results[name] = finish(*running.pop(name))
    for name, (process, started) in running.items():
        results[name] = finish(process, started)
    return results


def finish(process, started: float) -> dict:
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.time() - started
    log_step(f"pid {process.pid} exited {os.waitstatus_to_exitcode(status)} after {wall:.0f} s")
    return {
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "exit": os.waitstatus_to_exitcode(status),
    }


def find_metric(logs: dict, name: str) -> dict | None:
    """A metric's entry anywhere in open-unlearning's nested logs (pre-computes included)."""
    if name in logs and isinstance(logs[name], dict) and "value_by_index" in logs[name]:
        return logs[name]
    for value in logs.values():
        found = find_metric(value, name) if isinstance(value, dict) else None
        if found:
            return found
    return None


def per_item(logs: dict, name: str, key: str) -> list[float]:
    by_index = find_metric(logs, name)["value_by_index"]
    return [by_index[i][key] for i in sorted(by_index, key=int)]


def compare(ours: list[float], theirs: list[float]) -> dict:
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    return {"r": float(np.corrcoef(a, b)[0, 1]), "max_abs_diff": float(np.max(np.abs(a - b))),
            "n": int(a.size)}  # fmt: skip


def agreement(ours: dict, theirs: dict) -> dict:
    """Per-item agreement of answer probabilities, truth ratios and generations. Our truth
    ratio is TOFU's P(perturbed)^(1/n) / P(paraphrased) per item, as open-unlearning's."""
    table = {}
    for our_set, prefix in (("forget", "forget"), ("retain", "retain")):
        items = ours["sets"][our_set]["items"]
        prob = per_item(theirs, f"{prefix}_Q_A_Prob", "prob")
        tr_name = "forget_truth_ratio" if prefix == "forget" else "retain_Truth_Ratio"
        ratio = per_item(theirs, tr_name, "score")
        table[f"{prefix}_prob"] = compare([i["prob"] for i in items], prob)
        table[f"{prefix}_truth_ratio"] = compare([i["truth_ratio"] for i in items], ratio)
        generated = per_item(theirs, f"{prefix}_Q_A_ROUGE", "generation")
        same = sum(
            g.strip() == i["generated"].strip() for g, i in zip(generated, items, strict=True)
        )
        table[f"{prefix}_identical_generations"] = f"{same}/{len(items)}"
    summary = {f"{k}_r": v["r"] for k, v in table.items() if isinstance(v, dict)}
    return {**summary, "details": table}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ou-checkout", type=Path, help="open-unlearning checkout (required)")
    parser.add_argument("--ou-python", help="its environment's python (required)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--forget-split", default="forget01")
    parser.add_argument(
        "--precision",
        choices=(*PRECISIONS, "both"),
        default="both",
        help="best: each tool at its best precision on this CPU; float32: both in float32",
    )
    parser.add_argument("--quick", type=int, metavar="N", help="first N rows of each set")
    parser.add_argument("--sequential", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="print the runs, run nothing")
    parser.add_argument("--work", type=Path, default=Path("/tmp/vs_open_unlearning"))
    parser.add_argument("--out", default="vs_open_unlearning.json")
    args = parser.parse_args(argv)
    if not args.dry_run and not (args.ou_checkout and args.ou_python):
        parser.error("--ou-checkout and --ou-python are required (except with --dry-run)")
    if args.quick is not None and args.quick < 1:
        parser.error("--quick must be >= 1")
    return args


def precisions(choice: str) -> tuple[str, ...]:
    return PRECISIONS if choice == "both" else (choice,)


def cpu_kind(flags: str) -> str:
    """``fast-bf16`` (AVX-512-BF16 or AMX) or ``no-fast-bf16``: one row per kind and precision."""
    fast = {"avx512_bf16", "amx_bf16"} & set(flags.split())
    return "fast-bf16" if fast else "no-fast-bf16"


def run_pair(args, precision: str, fast_bf16: bool, paths: tuple[Path, Path, Path]) -> dict:
    """One side-by-side run at ``precision``: the row of the results file."""
    work = args.work / precision
    (work / "logs").mkdir(parents=True)
    dtypes = tool_dtypes(precision, fast_bf16)
    cmds = commands(args, dtypes, work, paths)
    log_step(f"precision {precision}: ours --dtype {dtypes['ours']}, open-unlearning "
             f"{dtypes['open_unlearning']}")  # fmt: skip
    runs = run_all(cmds, paths[2], args.sequential, work / "logs")
    ours = json.loads((work / "ours.json").read_text())
    theirs = json.loads((work / "ou" / "TOFU_EVAL.json").read_text())
    info = machine() | {"torch_threads": 1}
    return {
        "cpu": cpu_kind(info["cpu_flags"]),
        "precision": precision,
        "machine": info,
        "setting": {
            "model": args.model,
            "forget_split": args.forget_split,
            "rows_per_set": args.quick or "all",
            "together": not args.sequential,
            "commands": {k: " ".join(v) for k, v in cmds.items()},
        },
        "ours": runs["ours"] | {"dtype": ours.get("dtype", dtypes["ours"])},  # auto, resolved
        "open_unlearning": runs["open_unlearning"] | {"dtype": dtypes["open_unlearning"]},
        "speedup": round(runs["open_unlearning"]["wall_s"] / runs["ours"]["wall_s"], 2),
        "agreement": agreement(ours, theirs),
    }


def merged_rows(previous: dict | None, rows: list[dict]) -> dict:
    """The results file: earlier rows of other (CPU kind, precision) pairs, then ``rows``. A
    file of the one-row layout (before precisions) becomes its row."""
    old = (previous or {}).get("rows", [])
    if previous and "machine" in previous and "rows" not in previous:
        dtype = previous.get("setting", {}).get("dtype", "float32")
        flags = previous["machine"].get("cpu_flags", "")
        old = [{"cpu": cpu_kind(flags), "precision": dtype, **previous}]
    new = {(row["cpu"], row["precision"]) for row in rows}
    return {"rows": [r for r in old if (r.get("cpu"), r.get("precision")) not in new] + rows}


def dry_run(args, fast_bf16: bool) -> None:
    for precision in precisions(args.precision):
        dtypes = tool_dtypes(precision, fast_bf16)
        print(f"{precision}: ours --dtype {dtypes['ours']}, open-unlearning torch_dtype "
              f"{dtypes['open_unlearning']} (cpu: {cpu_kind(machine()['cpu_flags'])}, "
              f"work {args.work / precision})")  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    from tif_unlearn.data.tofu import default_tofu_dir
    from tif_unlearn.models import resolve_model_source
    from tif_unlearn.train.precision import cpu_has_fast_bf16

    fast_bf16 = cpu_has_fast_bf16()
    if args.dry_run:
        return dry_run(args, fast_bf16)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    model = Path(resolve_model_source(args.model))
    view = model_view(model, args.work / "model-for-transformers-4.45")
    data = tofu_folder(default_tofu_dir(), args.work / "tofu", args.forget_split, args.quick)
    rows = [run_pair(args, p, fast_bf16, (model, view, data)) for p in precisions(args.precision)]
    folder = args.work if args.quick else RESULTS  # a quick run is a smoke test, not a result
    path = folder / args.out
    previous = json.loads(path.read_text()) if path.is_file() else None
    write_results(args.out, merged_rows(previous, rows), folder)
    for row in rows:
        print(json.dumps({k: row[k] for k in ("cpu", "precision", "ours", "open_unlearning",
                                              "speedup")}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
