"""Progress bars (issue 34): none in a log (stderr not a terminal), where their carriage
returns ran into the tables printed after them; the embedded model's GGUF conversion bar only
with --verbose."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from conftest import QA_PAIRS, build_model, write_jsonl
from tif_unlearn import models

BAR = "%|"  # tqdm's "45%|████▌     |"


def tif(*args: str) -> subprocess.CompletedProcess:
    """``tif ARGS`` in a fresh process, stdout and stderr piped (as into a log file)."""
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "tif_unlearn.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_no_generation_bar_in_a_log(tiny_model_dir):
    done = tif("ask", "--model", str(tiny_model_dir), "--max-new-tokens", "4", "Q one?", "Q two?")
    assert done.returncode == 0, done.stderr
    assert BAR not in done.stderr and "\r" not in done.stderr
    assert done.stdout.startswith("Q: Q one?\nA: ")


def test_no_identify_bar_in_a_log(spacy_ready, tmp_path):
    data = write_jsonl(tmp_path / "forget.jsonl", QA_PAIRS)
    out = tmp_path / "forget.uw.jsonl"
    done = tif("identify", "--identifier", "phrases", "--data", str(data), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert BAR not in done.stderr and "\r" not in done.stderr


@pytest.fixture
def converting(tmp_path, monkeypatch, tokenizer):
    """The embedded model's conversion with a stand-in reader that draws a bar on stderr."""
    monkeypatch.setenv("TIF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "embedded_gguf_path", lambda name: tmp_path / f"{name}.gguf")

    def read_with_a_bar(path, dtype):
        sys.stderr.write("Converting and de-quantizing GGUF tensors...: 100%|#####| 272/272\n")
        return build_model(len(tokenizer)), tokenizer

    monkeypatch.setattr(models, "_load_gguf", read_with_a_bar)
    logger = logging.getLogger("tif_unlearn")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_the_conversion_bar_shows_only_with_verbose(converting, capsys):
    converting.setLevel(logging.INFO)
    models.ensure_embedded_folder("smollm2-135m")
    assert "GGUF" not in capsys.readouterr().err


def test_the_conversion_bar_shows_with_verbose(converting, capsys):
    converting.setLevel(logging.DEBUG)
    models.ensure_embedded_folder("smollm2-135m")
    assert "Converting and de-quantizing GGUF" in capsys.readouterr().err
