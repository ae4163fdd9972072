"""The efficacy benchmarks' cache keys stay as they are (benchmarks/cache.py).

Finished runs are found by their signatures and file names: a TOFU-mini or MUSE-mini run file in
results/*_runs/ is reused only if its stored signature equals the one the code computes now, and
an efficacy-v3 run (tofu_groups.py) that takes days resumes from its work folder the same way.
A refactor that changes any of these keys (a field renamed or reordered in a recipe, another
digest, another run name or folder) silently throws every finished run away. This test pins
the keys of one fixed small set of protocols and data files to the digest they had at commit
2456cdd (before the engine refactor of issue 33 item 7). If it fails, the change invalidates
finished runs: undo it, or make it on purpose and say so (then update the digest)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
bench_tofu = pytest.importorskip("bench_tofu")
bench_muse = pytest.importorskip("bench_muse")
tofu_groups = pytest.importorskip("tofu_groups")

from bench_spec import run_command, runs_dir  # noqa: E402
from cache import digest, model_digest  # noqa: E402
from common import RESULTS  # noqa: E402

PINNED = "08760701c6e27afc"  # computed by the code at 2456cdd on the same inputs

TEXTS = {
    "retain": '{"question": "Who?", "answer": "A retain author."}\n',
    "forget": '{"question": "Where?", "answer": "In Paris."}\n',
    "train": '{"question": "Who?", "answer": "A retain author."}\n'
    '{"question": "Where?", "answer": "In Paris."}\n',
    "gpt4o": '{"question": "Where?", "answer": "In Paris.", "spans": [[3, 8]]}\n',
    "learned": '{"question": "Where?", "answer": "In Paris.", "spans": [[3, 9]]}\n',
    "local": '{"text": "In Paris.", "spans": [[3, 8]]}\n',
    "target": '{"question": "Who?", "answer": "A retain author."}\n'
    '{"question": "Where?", "answer": "In Paris."}\n',
}


def data_files() -> dict[str, Path]:
    files = {}
    for name, text in TEXTS.items():
        files[name] = Path("data") / f"{name}.jsonl"
        files[name].parent.mkdir(parents=True, exist_ok=True)
        files[name].write_text(text)
    files["muse"] = Path("data") / "muse"
    return files


def keys() -> dict:
    files = data_files()
    tofu = bench_tofu.protocol(False)
    other = bench_tofu.protocol(False, forget_authors="190,191")
    muse = bench_muse.protocol(False)
    groups = tofu_groups.GroupsProtocol()
    Path("model").mkdir()
    Path("model/tif_run.json").write_text('{"run": 1}')
    muse_run = "tif-centered_lr3e-04"
    return {
        "muse_run": bench_muse.run_signature(muse, muse_run, files),
        "muse_run_file": str(
            (runs_dir(bench_muse.SPEC, muse, Path("w")) / f"{muse_run}.json").relative_to(RESULTS)
        ),
        "tofu_runs": list(tofu.runs),
        "tofu_run": bench_tofu.run_signature(tofu, "tif-learned_lr1e-04", files),
        "tofu_run_other_authors": bench_tofu.run_signature(other, "tif_lr3e-04_seed1", files),
        "tofu_finetune": bench_tofu.finetune_signature(tofu, "retain", files),
        "tofu_command": run_command(bench_tofu.SPEC, tofu, "tif-npo_lr3e-04", files),
        "tofu_runs_dir": str(runs_dir(bench_tofu.SPEC, tofu, Path("w")).relative_to(RESULTS)),
        "muse_runs": list(muse.runs),
        "muse_recipe": muse.recipe(),
        "muse_finetune": bench_muse.finetune_signature(muse, "retrained", files),
        "muse_command": run_command(bench_muse.SPEC, muse, muse_run, files),
        "groups_recipe": groups.recipe(),
        "groups_finetune": tofu_groups.finetune_signature(
            groups, "retain", {k: files[k] for k in ("target", "retain")}
        ),
        "model_digest": model_digest(Path("model")),
    }


def test_cache_keys_are_the_ones_finished_runs_were_made_with(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pinned = keys()
    assert pinned["tofu_runs_dir"] == "tofu_mini_runs"
    assert pinned["muse_run_file"] == "muse_mini_runs/tif-centered_lr3e-04.json"
    assert pinned["tofu_runs"][:2] == ["tif_lr1e-04", "simnpo_lr1e-04"]
    shown = json.dumps(pinned, sort_keys=True, indent=1)
    assert digest(json.dumps(pinned, sort_keys=True)) == PINNED, (
        "a cache key changed: finished runs would be redone\n" + shown
    )
