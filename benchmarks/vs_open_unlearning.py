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
Usage: python benchmarks/vs_open_unlearning.py --ou-checkout DIR --ou-python PY [--quick]
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


def commands(args, work: Path, model: Path, view: Path, data: Path) -> dict[str, list[str]]:
    configs = work / "hydra"
    (configs / "model").mkdir(parents=True, exist_ok=True)
    yaml = MODEL_YAML.format(folder=view, dtype=args.dtype, system=SYSTEM)
    (configs / "model" / "SmolLM2-135M-Instruct.yaml").write_text(yaml)
    n = args.forget_split.removeprefix("forget")
    ours = [sys.executable, "-m", "tif_unlearn.cli", "eval", "tofu", "--model", str(model)]
    ours += ["--data-dir", str(data), "--forget-split", args.forget_split, "--threads", "1"]
    ours += ["--max-new-tokens", "200", "--dtype", args.dtype, "--out", str(work / "ours.json")]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ou-checkout", type=Path, required=True)
    parser.add_argument("--ou-python", required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--forget-split", default="forget01")
    parser.add_argument("--dtype", default="float32", help="both tools (float32 | bfloat16)")
    parser.add_argument("--quick", type=int, metavar="N", help="first N rows of each set")
    parser.add_argument("--sequential", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("/tmp/vs_open_unlearning"))
    parser.add_argument("--out", default="vs_open_unlearning.json")
    args = parser.parse_args()
    from tif_unlearn.data.tofu import default_tofu_dir
    from tif_unlearn.models import resolve_model_source

    shutil.rmtree(args.work, ignore_errors=True)
    (args.work / "logs").mkdir(parents=True)
    model = Path(resolve_model_source(args.model))
    view = model_view(model, args.work / "model-for-transformers-4.45")
    data = tofu_folder(default_tofu_dir(), args.work / "tofu", args.forget_split, args.quick)
    cmds = commands(args, args.work, model, view, data)
    runs = run_all(cmds, data, args.sequential, args.work / "logs")
    ours = json.loads((args.work / "ours.json").read_text())
    theirs = json.loads((args.work / "ou" / "TOFU_EVAL.json").read_text())
    payload = {
        "machine": machine() | {"torch_threads": 1},
        "setting": {
            "model": args.model,
            "forget_split": args.forget_split,
            "dtype": args.dtype,
            "rows_per_set": args.quick or "all",
            "together": not args.sequential,
            "commands": {k: " ".join(v) for k, v in cmds.items()},
        },  # fmt: skip
        "ours": runs["ours"] | {"dtype": args.dtype},
        "open_unlearning": runs["open_unlearning"] | {"dtype": args.dtype},
        "speedup": round(runs["open_unlearning"]["wall_s"] / runs["ours"]["wall_s"], 2),
        "agreement": agreement(ours, theirs),
    }
    folder = args.work if args.quick else RESULTS  # a quick run is a smoke test, not a result
    write_results(args.out, payload, folder)
    print(json.dumps({k: payload[k] for k in ("ours", "open_unlearning", "speedup")}, indent=1))


if __name__ == "__main__":
    main()
