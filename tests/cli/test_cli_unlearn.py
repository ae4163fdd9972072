"""CLI: `tif unlearn` / `tif finetune` through main(), outputs and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import QA_PAIRS, write_jsonl
from tif_unlearn.cli.app import main


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _unlearn_args(model, forget, out, *extra):
    return [
        "unlearn",
        "--model",
        str(model),
        "--forget",
        str(forget),
        "--out",
        str(out),
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        *extra,
    ]


def test_unlearn_writes_a_loadable_model_and_run_record(tiny_model_dir, qa_files, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "unlearned"
    code = main(
        _unlearn_args(
            tiny_model_dir,
            qa_files["forget"],
            out,
            "--retain",
            str(qa_files["retain"]),
            "--beta",
            "0.5",
            "--seed",
            "3",
        )
    )
    assert code == 0
    assert str(out) in capsys.readouterr().out
    AutoModelForCausalLM.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)
    assert (out / "model.safetensors").is_file()
    run = json.loads((out / "tif_run.json").read_text())
    assert run["method"] == "tif"
    assert run["method_config"]["beta"] == 0.5
    assert run["config"]["seed"] == 3
    assert len(run["data"]["forget"]["sha256"]) == 64
    assert {"torch", "transformers", "tif_unlearn"} <= set(run["versions"])
    assert run["tokens"]["uw_tokens"] > 0 and run["tokens"]["gw_tokens"] > 0
    assert any("lpl" in entry for entry in run["log"])


def test_yaml_config_is_used_and_cli_overrides_it(tiny_model_dir, qa_files, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("method: npo\nbeta: 0.7\nlambda-retain: 0.5\n")
    out = tmp_path / "o"
    code = main(
        _unlearn_args(
            tiny_model_dir,
            qa_files["plain"],
            out,
            "--config",
            str(config),
            "--retain",
            str(qa_files["retain"]),
            "--beta",
            "0.2",
        )
    )
    assert code == 0
    run = json.loads((out / "tif_run.json").read_text())
    assert run["method"] == "npo"
    assert run["method_config"] == {
        "beta": 0.2,
        "lambda_retain": 0.5,
        "forget_scale": 1.0,
        "targeted": False,
        "lambda_pl": 1.0,
    }


def test_finetune_lowers_the_training_loss(tiny_model_dir, qa_files, tmp_path):
    out = tmp_path / "ft"
    code = main(
        [
            "finetune",
            "--model",
            str(tiny_model_dir),
            "--data",
            str(qa_files["plain"]),
            "--out",
            str(out),
            "--epochs",
            "20",
            "--batch-size",
            "2",
            "--lr",
            "1e-2",
            "--warmup-epochs",
            "0",
        ]
    )
    assert code == 0
    losses = [
        entry["loss"]
        for entry in json.loads((out / "tif_run.json").read_text())["log"]
        if "loss" in entry
    ]
    assert losses[-1] < 0.5 * losses[0]


def test_out_equal_to_input_model_is_refused(tiny_model_dir, qa_files, capsys):
    before = _snapshot(tiny_model_dir)
    code = main(_unlearn_args(tiny_model_dir, qa_files["forget"], tiny_model_dir, "--overwrite"))
    assert code == 2
    assert "input model folder" in capsys.readouterr().err
    assert _snapshot(tiny_model_dir) == before


def test_non_empty_out_needs_overwrite(tiny_model_dir, qa_files, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    assert main(_unlearn_args(tiny_model_dir, qa_files["forget"], out)) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "precious"
    assert main(_unlearn_args(tiny_model_dir, qa_files["forget"], out, "--overwrite")) == 0
    assert not (out / "keep.txt").exists() and (out / "tif_run.json").is_file()


def _bad_json(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "a", "answer": "b", "unwanted_spans": []}\n{"question": \n')
    return path, ["bad.jsonl:2"]


def _missing_field(tmp_path):
    path = write_jsonl(tmp_path / "missing.jsonl", [{"question": "q?", "unwanted_spans": []}])
    return path, ["missing.jsonl:1", "answer"]


def _empty_answer(tmp_path):
    path = write_jsonl(
        tmp_path / "empty.jsonl", [{"question": "q?", "answer": "  ", "unwanted_spans": []}]
    )
    return path, ["empty.jsonl:1", "answer"]


def _bad_span(tmp_path):
    rows = [
        {"question": "q?", "answer": "short", "unwanted_spans": [[0, 2]]},
        {"question": "q?", "answer": "short", "unwanted_spans": [[3, 99]]},
    ]
    return write_jsonl(tmp_path / "span.jsonl", rows), ["span.jsonl:2", "unwanted_spans"]


def _not_annotated(tmp_path):
    return write_jsonl(tmp_path / "plain.jsonl", QA_PAIRS), ["plain.jsonl:1", "tif identify"]


def _missing_file(tmp_path):
    return tmp_path / "nope.jsonl", ["nope.jsonl"]


@pytest.mark.parametrize(
    "make_input",
    [_bad_json, _missing_field, _empty_answer, _bad_span, _not_annotated, _missing_file],
)
def test_bad_forget_input_fails_cleanly(make_input, tiny_model_dir, tmp_path, capsys):
    forget, expected = make_input(tmp_path)
    out = tmp_path / "out"
    code = main(_unlearn_args(tiny_model_dir, forget, out))
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in expected:
        assert fragment in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--method", "magic"], "unknown method"),
        (["--lr", "-1"], "lr must be > 0"),
        (["--epochs", "0"], "epochs must be > 0"),
        (["--beta", "0"], "beta must be > 0"),
        (["--gamma", "1"], "--gamma does not apply"),
        (["--method", "graddiff"], "needs a retain set"),
        (["--lr", "fast"], "invalid float value"),
    ],
)
def test_bad_options_fail_cleanly(args, fragment, tiny_model_dir, qa_files, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(_unlearn_args(tiny_model_dir, qa_files["forget"], out, *args))
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_model_folder_without_weights_fails_cleanly(tiny_model_dir, qa_files, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((tiny_model_dir / "config.json").read_bytes())
    code = main(_unlearn_args(broken, qa_files["forget"], tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2 and "no safetensors weights" in err
    assert not (tmp_path / "out").exists()
