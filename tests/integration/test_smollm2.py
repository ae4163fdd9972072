"""Slow: the real embedded SmolLM2-135M model on the paper's TOFU annotations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tif_unlearn.cli.app import main
from tif_unlearn.data.tofu import default_tofu_dir

pytestmark = pytest.mark.slow


def _annotations() -> Path:
    tofu = default_tofu_dir()
    path = tofu.parent / "tofu-uw-annotations" / "forget01.llm.jsonl" if tofu else None
    if path is None or not path.is_file():
        pytest.skip("TOFU UW annotations not found (../shared/data/tofu-uw-annotations)")
    return path


def test_unlearn_smollm2_with_tif_for_two_steps(tmp_path, smollm2_folder):
    # smollm2_folder: converted once per session into the temporary $TIF_CACHE_DIR (not ~)
    lines = _annotations().read_text(encoding="utf-8").splitlines()[:4]
    forget = tmp_path / "forget4.jsonl"
    forget.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "smollm2-tif"
    code = main(
        [
            "unlearn",
            "--model",
            "smollm2-135m",
            "--method",
            "tif",
            "--forget",
            str(forget),
            "--out",
            str(out),
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--lr",
            "1e-5",
        ]
    )
    assert code == 0
    run = json.loads((out / "tif_run.json").read_text())
    steps = [entry for entry in run["log"] if "loss" in entry]
    assert len(steps) == 2 and run["tokens"]["uw_tokens"] > 0
    assert (out / "model.safetensors").stat().st_size > 100_000_000
