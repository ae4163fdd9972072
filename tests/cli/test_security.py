"""Security guarantees of the `tif` command (docs/errors-and-security.md, "Security"):

- model code from a folder or the hub runs only with ``--trust-remote-code``;
- pickle weights (``pytorch_model.bin``, ``.pt`` ...) are loaded only with ``--allow-pickle``,
  and every model written is safetensors;
- the API key comes only from ``$OPENAI_API_KEY`` and is never written: not to the output
  records, the HTML page, the reply cache, ``tif_run.json``, stdout, stderr or the logs, even
  when the endpoint echoes it back in an error;
- values from data or config files (ids, fields, path-like strings) never choose where
  anything is written: only ``--out`` (and ``--html``) are written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from chat_server import ChatServer, capitalised_words
from conftest import QA_PAIRS, UNWANTED, annotate, write_jsonl
from tif_unlearn.cli.app import main
from tif_unlearn.errors import TifError
from tif_unlearn.models import load_model

SECRET = "sk-tif-security-test-7d1e4c0b9a2f-never-write-me"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def files_state(root: Path) -> dict[str, str]:
    """Every file under ``root`` (sha256) and folder (``"dir"``), by path."""
    state = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            state[os.path.join(folder, name)] = "dir"
        for name in files:
            path = Path(folder, name)
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def written(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Paths created or changed between two ``files_state`` snapshots (removals included)."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tif: error: "), err
    assert "Traceback" not in err
    return lines[0]


def unlearn_argv(model, forget, out, *extra) -> list[str]:
    argv = ["unlearn", "--model", model, "--forget", forget, "--out", out, "--max-steps", "1"]
    return [str(a) for a in [*argv, "--batch-size", "2", *extra]]


@pytest.fixture
def forget_file(tmp_path) -> Path:
    rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    return write_jsonl(tmp_path / "forget.jsonl", rows)


# --------------------------------------------------------------------------- remote code

CUSTOM_CONFIG = """
from transformers import LlamaConfig


class EvilConfig(LlamaConfig):
    model_type = "tif-evil"
"""

CUSTOM_MODEL = """
from pathlib import Path

from transformers import LlamaForCausalLM

from .configuration_evil import EvilConfig

Path(__file__).resolve().parent.joinpath("REMOTE_CODE_RAN").touch()


class EvilModel(LlamaForCausalLM):
    config_class = EvilConfig
"""


@pytest.fixture
def remote_code_model(tiny_model_dir, tmp_path) -> Path:
    """The tiny model, but its config names a model type only its own Python code defines."""
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "custom-model"))
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "tif-evil"
    config["auto_map"] = {
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModelForCausalLM": "modeling_evil.EvilModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "configuration_evil.py").write_text(CUSTOM_CONFIG)
    (folder / "modeling_evil.py").write_text(CUSTOM_MODEL)
    return folder


def test_remote_code_is_refused_without_the_flag(remote_code_model, forget_file, tmp_path, capsys):
    before = files_state(tmp_path)
    code = main(unlearn_argv(remote_code_model, forget_file, tmp_path / "out"))
    line = error_line(capsys.readouterr().err)
    assert code == 2
    assert "--trust-remote-code" in line and str(remote_code_model) in line
    assert files_state(tmp_path) == before  # no output, and the code never ran


def test_load_model_runs_remote_code_only_when_trusted(remote_code_model, tmp_path, monkeypatch):
    import transformers.dynamic_module_utils as dynamic

    with pytest.raises(TifError, match="--trust-remote-code"):
        load_model(str(remote_code_model))  # the default: not trusted
    assert not any(p.name == "REMOTE_CODE_RAN" for p in tmp_path.rglob("*"))

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "hf-modules"))
    model, _ = load_model(str(remote_code_model), trust_remote_code=True)
    assert type(model).__name__ == "EvilModel"  # the folder's own code was used
    assert any(p.name == "REMOTE_CODE_RAN" for p in tmp_path.rglob("*"))


# --------------------------------------------------------------------------- pickle weights


@pytest.fixture
def pickle_model(tiny_model_dir, tmp_path) -> Path:
    """The tiny model with its weights only as ``pytorch_model.bin`` (a pickle file).

    transformers 5 ignores ``save_pretrained(safe_serialization=False)`` and always writes
    safetensors, so the pickle file is written with ``torch.save``."""
    import torch

    folder = tmp_path / "pickle-model"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(load_file(tiny_model_dir / "model.safetensors"), folder / "pytorch_model.bin")
    return folder


def test_pickle_weights_are_refused_without_allow_pickle(
    pickle_model, forget_file, tmp_path, capsys
):
    before = files_state(tmp_path)
    code = main(unlearn_argv(pickle_model, forget_file, tmp_path / "out"))
    line = error_line(capsys.readouterr().err)
    assert code == 2 and "--allow-pickle" in line
    assert files_state(tmp_path) == before
    with pytest.raises(TifError, match="--allow-pickle"):
        load_model(str(pickle_model))


def test_pickle_weights_load_with_allow_pickle_and_the_output_is_safetensors(
    pickle_model, tiny_model_dir, forget_file, tmp_path
):
    model, _ = load_model(str(pickle_model), allow_pickle=True)
    expected = load_file(tiny_model_dir / "model.safetensors")
    loaded = model.state_dict()
    assert all(loaded[name].equal(tensor) for name, tensor in expected.items())

    out = tmp_path / "out"
    assert main(unlearn_argv(pickle_model, forget_file, out, "--allow-pickle")) == 0
    assert (out / "model.safetensors").is_file()
    assert not [p for p in out.rglob("*") if p.suffix in PICKLE_SUFFIXES]


class _Trap:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_next_to_safetensors_is_never_unpickled(tiny_model_dir, tmp_path):
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))
    marker = tmp_path / "UNPICKLED"
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(marker)))
    for allow_pickle in (False, True):  # safetensors are preferred even when pickle is allowed
        load_model(str(folder), allow_pickle=allow_pickle)
        assert not marker.exists()


# --------------------------------------------------------------------------- API key


def _grep_secret(paths) -> list[str]:
    return [str(p) for p in paths if Path(p).is_file() and SECRET.encode() in Path(p).read_bytes()]


@pytest.mark.parametrize(
    ("status", "fail_first", "expected_code"),
    [(None, 0, 0), (400, 1, 0), (500, 99, 2), (401, 99, 2)],
    ids=["ok", "400-one-sample", "500-every-request", "401-refused"],
)
def test_api_key_is_never_written_printed_or_logged(
    status, fail_first, expected_code, forget_file, tmp_path, monkeypatch, capsys, caplog
):
    """The server echoes the Authorization header (the key) in every error body."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("TIF_CACHE_DIR", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG)
    out, page = tmp_path / "out" / "annotated.jsonl", tmp_path / "out" / "page.html"
    before = files_state(tmp_path)
    server = ChatServer(
        capitalised_words, fail_first=fail_first, status=status or 500, retry_after=0
    )
    with server:
        argv = ["--verbose", "identify", "--identifier", "llm", "--data", str(forget_file)]
        argv += ["--api-base", server.api_base, "--api-model", "x"]
        code = main([*argv, "--out", str(out), "--html", str(page)])
    stdout, stderr = capsys.readouterr()

    assert code == expected_code, stderr
    assert {r["headers"]["Authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    changed = written(before, files_state(tmp_path))
    if expected_code == 0:
        assert {str(out), str(page)} <= changed
        assert any("cache" in p for p in changed)  # replies were cached: grep them too
    else:
        assert not changed
        assert stderr.splitlines()[-1].startswith("tif: error: ")  # after per-sample warnings
    if status == 401:
        assert "***" in stderr  # the echoed key, redacted
    if status == 400:
        assert "HTTP 400" in stderr and "***" in stderr
    assert _grep_secret(changed) == []
    for where in (stdout, stderr, caplog.text):
        assert SECRET not in where


def test_api_key_is_not_in_tif_run_json(tiny_model_dir, forget_file, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    before = files_state(tmp_path)
    assert main(unlearn_argv(tiny_model_dir, forget_file, tmp_path / "out")) == 0
    changed = written(before, files_state(tmp_path))
    assert str(tmp_path / "out" / "tif_run.json") in changed
    assert _grep_secret(changed) == []


# --------------------------------------------------------------------------- paths from data

EVIL = "../../evil"


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> dict[str, Path]:
    """Inputs three folders deep (so ``../../evil`` from them stays inside the watched
    folder), the working directory there too, and a folder outside the watched one whose
    absolute path the data also names."""
    watched = tmp_path / "watched"
    inputs = watched / "a" / "b" / "c"
    inputs.mkdir(parents=True)
    (watched / "results").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(inputs)
    monkeypatch.setenv("TIF_CACHE_DIR", str(watched / "cache"))
    return {"watched": watched, "inputs": inputs, "elsewhere": elsewhere}


def evil_rows(elsewhere: Path) -> list[dict]:
    """Annotated QA rows whose ids, extra fields and texts look like paths."""
    rows = []
    for i, row in enumerate(annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)):
        target = EVIL if i % 2 else str(elsewhere / "evil")
        rows.append(
            {
                "id": target,
                "source": target,
                "out": target,
                "file": f"{target}/model.safetensors",
                **row,
                "question": f"{row['question']} {target}",
            }
        )
    return rows


def assert_only(sandbox, before: dict, *allowed: Path) -> None:
    changed = written(before, files_state(sandbox["watched"]))
    outside = {p for p in changed if not any(p.startswith(str(a)) for a in allowed)}
    assert outside == set()
    assert not any(sandbox["elsewhere"].iterdir())
    assert not (sandbox["watched"] / "evil").exists()


def test_identify_writes_only_out_and_html(sandbox, capsys):
    data = write_jsonl(sandbox["inputs"] / "forget.jsonl", evil_rows(sandbox["elsewhere"]))
    out, page = (
        sandbox["watched"] / "results" / "a.jsonl",
        sandbox["watched"] / "results" / "p.html",
    )
    before = files_state(sandbox["watched"])
    argv = ["identify", "--identifier", "annotations", "--data", str(data)]
    assert main([*argv, "--out", str(out), "--html", str(page)]) == 0
    assert_only(sandbox, before, out, page)
    assert out.is_file() and page.is_file()


def test_unlearn_with_path_like_data_and_yaml_writes_only_out(tiny_model_dir, sandbox):
    rows = evil_rows(sandbox["elsewhere"])
    renamed = [{EVIL if k == "question" else k: v for k, v in r.items()} for r in rows]
    data = write_jsonl(sandbox["inputs"] / "forget.jsonl", renamed)
    config = sandbox["inputs"] / "run.yaml"
    config.write_text(f'field_map: "{EVIL}=question"\nmethod: tif\nseed: 1\n')
    out = sandbox["watched"] / "results" / "model"
    before = files_state(sandbox["watched"])
    argv = unlearn_argv(tiny_model_dir, data, out, "--config", config)
    assert main(argv) == 0
    assert_only(sandbox, before, out)
    assert (out / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "yaml_line",
    [
        f"method: {EVIL}",
        f"identifier: {EVIL}",
        f"eval_forget_split: {EVIL}\neval_every: 1",
        f"scheduler: {EVIL}",
        f"keep_best: {EVIL}",
        f"refusals: {EVIL}/idk.jsonl\nmethod: idkdpo",
    ],
    ids=["method", "identifier", "eval-split", "scheduler", "keep-best", "refusals"],
)
def test_path_like_yaml_values_are_refused_and_write_nothing(
    yaml_line, tiny_model_dir, sandbox, capsys
):
    data = write_jsonl(sandbox["inputs"] / "forget.jsonl", evil_rows(sandbox["elsewhere"]))
    config = sandbox["inputs"] / "run.yaml"
    config.write_text(yaml_line + "\n")
    before = files_state(sandbox["watched"])
    code = main(unlearn_argv(tiny_model_dir, data, sandbox["watched"] / "out", "--config", config))
    error_line(capsys.readouterr().err)
    assert code == 2
    assert_only(sandbox, before)
