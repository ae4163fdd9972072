"""Same weights before and after a refactor: fixed-seed runs of a tiny model through the
``tif`` command line, one digest per run. Run it with two code versions and compare:

    PYTHONPATH=OLD/src python benchmarks/same_weights.py --out old.json
    PYTHONPATH=NEW/src python benchmarks/same_weights.py --out new.json --compare old.json

It uses only the command line (``tif_unlearn.cli.main``), which both versions share, and the
test suite's tiny tokenizer and model builders. Digests depend on the CPU's kernels: compare
runs made on one machine only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

RUNS = {
    "tif": ["--method", "tif"],
    "tif-preset-tofu": ["--method", "tif", "--preset", "tofu", "--epochs", "4"],
    "npo-targeted": ["--method", "npo", "--targeted"],
    "simnpo": ["--method", "simnpo"],
    "graddiff-floor": ["--method", "graddiff", "--step-count", "floor"],
    "idkdpo": ["--method", "idkdpo"],
    "tif-live-reference": ["--method", "tif", "--live-reference"],
}
COMMON = ["--epochs", "2", "--batch-size", "2", "--grad-accum", "2", "--lr", "1e-3", "--seed", "3"]


def tiny_inputs(folder: Path) -> dict[str, Path]:
    import torch

    from conftest import CHAT_TEMPLATE, QA_PAIRS, UNWANTED, annotate, build_model, build_tokenizer

    torch.set_num_threads(1)
    tokenizer = build_tokenizer(CHAT_TEMPLATE)
    build_model(len(tokenizer)).save_pretrained(folder / "model", safe_serialization=True)
    tokenizer.save_pretrained(folder / "model")
    forget = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    retain = [{"question": "Where is Zürich?", "answer": "Zürich is in Switzerland."}] * 2
    refusals = ["I don't know.", "I cannot say."]
    files = {"forget": forget, "retain": retain}
    paths = {"model": folder / "model"}
    for name, rows in files.items():
        paths[name] = folder / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    paths["refusals"] = folder / "refusals.txt"
    paths["refusals"].write_text("\n".join(refusals) + "\n", encoding="utf-8")
    return paths


def digest_runs() -> dict[str, str]:
    from tif_unlearn.cli import main

    digests = {}
    with tempfile.TemporaryDirectory() as scratch:
        paths = tiny_inputs(Path(scratch))
        for name, options in RUNS.items():
            out = Path(scratch) / name
            inputs = ["--model", str(paths["model"]), "--forget", str(paths["forget"])]
            inputs += ["--retain", str(paths["retain"]), "--out", str(out)]
            if "idkdpo" in options:
                inputs += ["--refusals", str(paths["refusals"])]
            if main(["unlearn", *inputs, *COMMON, *options]) != 0:
                raise SystemExit(f"run {name} failed")
            weights = (out / "model.safetensors").read_bytes()
            digests[name] = hashlib.sha256(weights).hexdigest()
    return digests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="write the digests here (JSON)")
    parser.add_argument("--compare", help="a JSON written by another code version")
    args = parser.parse_args()
    import tif_unlearn

    result = {"source": str(Path(tif_unlearn.__file__).parent), "digests": digest_runs()}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.compare:
        before = json.loads(Path(args.compare).read_text())["digests"]
        differ = sorted(n for n in result["digests"] if before.get(n) != result["digests"][n])
        print("identical" if not differ else f"differ: {', '.join(differ)}")
        return 1 if differ else 0
    print(json.dumps(result["digests"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
