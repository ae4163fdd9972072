"""CLI: `tif eval tofu`, `tif eval muse`, `tif eval aggregate` through main(), on the tiny model
and synthetic TOFU / MUSE folders (real file names and formats, made-up text)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from conftest import write_jsonl
from eval_data import (
    FORGET,
    REAL_AUTHORS,
    RETAIN,
    WORLD_FACTS,
    perturbed_rows,
    write_muse_folder,
    write_tofu_folder,
)
from tif_unlearn.cli.app import main


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) with stdout/stderr captured (usable from module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def tofu_args(model, data, out, *extra) -> list[str]:
    return [
        "eval",
        "tofu",
        "--model",
        str(model),
        "--data-dir",
        str(data),
        "--forget-split",
        "forget01",
        "--out",
        str(out),
        "--max-new-tokens",
        "8",
        *map(str, extra),
    ]


@pytest.fixture(scope="module")
def tofu_dir(tmp_path_factory) -> Path:
    return write_tofu_folder(tmp_path_factory.mktemp("tofu") / "tofu")


@pytest.fixture
def tofu_copy(tofu_dir, tmp_path) -> Path:
    """A private copy of the synthetic TOFU folder that a test may damage."""
    return Path(shutil.copytree(tofu_dir, tmp_path / "tofu"))


@pytest.fixture(scope="module")
def trained_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model fine-tuned (`tif finetune`) on the answers of every synthetic TOFU set
    except the holdout, so that its generations overlap the answers (ROUGE > 0), Model Utility
    is > 0 and membership inference separates forget from holdout."""
    base = tmp_path_factory.mktemp("trained")
    pairs = FORGET + RETAIN + REAL_AUTHORS + WORLD_FACTS
    data = write_jsonl(base / "train.jsonl", [{"question": q, "answer": a} for q, a in pairs])
    out = base / "model"
    argv = ["finetune", "--model", tiny_model_dir, "--data", data, "--out", out]
    argv += ["--epochs", "40", "--batch-size", "6", "--lr", "3e-3", "--warmup-epochs", "0"]
    code, _, stderr = run_cli(argv)
    assert code == 0, stderr
    return out


BF16_LOSS_RTOL = 1e-3  # answer losses, bf16 vs float32 weights: 6.1e-5 measured (AMX Xeon)


def _run_once(model, data, out) -> dict:
    code, stdout, stderr = run_cli(tofu_args(model, data, out))
    assert code == 0, stderr
    return {"path": out, "results": json.loads(out.read_text()), "stdout": stdout}


@pytest.fixture(scope="module")
def tofu_run(trained_model_dir, tofu_dir, tmp_path_factory) -> dict:
    """One plain `tif eval tofu` run of the trained model (no retain reference)."""
    return _run_once(trained_model_dir, tofu_dir, tmp_path_factory.mktemp("run") / "R.json")


@pytest.fixture(scope="module")
def random_run(tiny_model_dir, tofu_dir, tmp_path_factory) -> dict:
    """The same for the random tiny model (its Min-40% AUC is < 1, so PrivLeak is defined)."""
    return _run_once(tiny_model_dir, tofu_dir, tmp_path_factory.mktemp("run") / "R.json")


def _one_line_error(stderr: str, *, after_model: bool = False) -> str:
    """The one ``tif: error:`` line of stderr. Errors raised before any model is loaded are
    the only stderr line; later ones follow progress bars (tqdm, carriage returns)."""
    assert "Traceback" not in stderr, stderr
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not after_model:
        assert len(lines) == 1, stderr
    errors = [line for line in lines if "tif: error:" in line]
    assert len(errors) == 1 and errors[0].startswith("tif: error: "), stderr
    return errors[0]


# --------------------------------------------------------------------------- eval tofu


def test_tofu_results_file_has_summary_sets_and_mia(tofu_run, trained_model_dir):
    results = tofu_run["results"]
    summary = results["summary"]
    assert results["benchmark"] == "tofu"
    assert 0 < summary["model_utility"] <= 1
    assert summary["forget_quality"] is None
    assert "privleak" not in summary
    for key in ("retain_prob", "real_authors_rouge", "world_facts_truth_ratio", "forget_prob"):
        assert math.isfinite(summary[key])
    sizes = {"forget": 5, "retain": 5, "real_authors": 4, "world_facts": 4}
    for name, n in sizes.items():
        assert len(results["sets"][name]["items"]) == n
    for item in results["sets"]["forget"]["items"]:
        for key in ("avg_gt_loss", "truth_ratio", "rougeL_recall", "extraction_strength"):
            assert math.isfinite(item[key]), key
        assert item["avg_gt_loss"] > 0 and item["truth_ratio"] > 0
        assert 0 <= item["rougeL_recall"] <= 1 and 0 <= item["extraction_strength"] <= 1
        assert isinstance(item["generated"], str)
        assert len(item["average_perturb_loss"]) == 5
    for item in results["sets"]["real_authors"]["items"]:
        assert len(item["average_perturb_loss"]) == 3
    assert set(results["mia"]) == {"loss_auc", "zlib_auc", "min_k_auc"}
    for value in results["mia"].values():
        assert 0 <= value <= 1
    # Trained on the forget answers, not on the holdout ones: the losses tell them apart.
    assert results["mia"]["loss_auc"] > 0.9
    assert summary["forget_rouge"] > 0
    assert results["model"] == str(trained_model_dir)
    assert (results["device"], results["dtype"]) == ("cpu", "float32")  # said where it ran


def test_tofu_prints_the_summary_table(tofu_run):
    stdout, summary = tofu_run["stdout"], tofu_run["results"]["summary"]
    utility_line = next(line for line in stdout.splitlines() if line.startswith("Model Utility"))
    assert utility_line.split()[-1] == f"{summary['model_utility']:.4g}"
    assert "MIA min_k AUC" in stdout
    assert "Forget Quality" not in stdout  # None without a retain reference
    assert f"evaluated on cpu in float32; results written to {tofu_run['path']}" in stdout


def _independent_avg_nll(model, tokenizer, question: str, answer: str) -> float:
    """Mean NLL of answer tokens + EOS after the chat prompt, one unpadded forward pass."""
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt_ids + answer_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].double()  # (T, V)
    logps = torch.log_softmax(logits[:-1], dim=-1)  # position t predicts token t+1
    targets = ids[0, 1:]
    answer_logps = logps[len(prompt_ids) - 1 :].gather(1, targets[len(prompt_ids) - 1 :, None])
    return float(-answer_logps.mean())


def test_tofu_item_numbers_match_hand_computation(tofu_run, trained_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    items = tofu_run["results"]["sets"]["forget"]["items"]
    item = items[2]
    assert (item["question"], item["answer"]) == FORGET[2]
    # Prob. = exp(-mean answer NLL); truth ratio R = exp(L_para - mean_j L_pert_j).
    assert item["prob"] == pytest.approx(math.exp(-item["avg_gt_loss"]), rel=1e-12)
    perturbed = item["average_perturb_loss"]
    expected_ratio = math.exp(item["avg_paraphrased_loss"] - sum(perturbed) / len(perturbed))
    assert item["truth_ratio"] == pytest.approx(expected_ratio, rel=1e-9)
    # The loss itself, recomputed without the runner (no batching, no padding).
    tokenizer = AutoTokenizer.from_pretrained(trained_model_dir)
    model = AutoModelForCausalLM.from_pretrained(trained_model_dir, dtype=torch.float32).eval()
    for item, (question, answer) in zip(items, FORGET, strict=True):
        expected = _independent_avg_nll(model, tokenizer, question, answer)
        assert item["avg_gt_loss"] == pytest.approx(expected, rel=1e-4), question
    # The forget aggregates are the means of the item values.
    summary = tofu_run["results"]["summary"]
    assert summary["forget_prob"] == pytest.approx(sum(i["prob"] for i in items) / len(items))
    ratios = [i["truth_ratio"] for i in items]
    forget_tr = sum(min(r, 1 / r) for r in ratios) / len(ratios)
    assert summary["forget_truth_ratio"] == pytest.approx(forget_tr)


def test_tofu_dtype_auto_follows_the_cpu(cpu, tiny_model_dir, tofu_dir, tmp_path):
    """`--dtype auto` evaluates in bfloat16 where bf16 is fast (AVX-512-BF16 or AMX), else in
    float32, and says which; the bf16 numbers agree with float32 ones within bf16's precision."""
    auto, fp32 = tmp_path / "auto.json", tmp_path / "fp32.json"
    code, stdout, stderr = run_cli(tofu_args(tiny_model_dir, tofu_dir, auto, "--max-items", 2))
    assert code == 0, stderr
    results = json.loads(auto.read_text())
    assert (results["device"], results["dtype"]) == ("cpu", cpu.eval_dtype)
    assert f"evaluated on cpu in {cpu.eval_dtype}; results written to {auto}" in stdout
    argv = tofu_args(tiny_model_dir, tofu_dir, fp32, "--max-items", 2, "--dtype", "float32")
    code, _, stderr = run_cli(argv)
    assert code == 0, stderr
    reference = json.loads(fp32.read_text())
    # bf16 weights: 8 significant bits, each weight off by up to 2^-9 relative; the losses of
    # the random tiny model (~6 nats, small logits) move far less (see BF16_LOSS_RTOL).
    rtol = BF16_LOSS_RTOL if cpu.fast_bf16 else 0.0
    for name in ("forget", "retain", "real_authors", "world_facts"):
        pairs = zip(results["sets"][name]["items"], reference["sets"][name]["items"], strict=True)
        for item, expected in pairs:
            assert item["avg_gt_loss"] == pytest.approx(expected["avg_gt_loss"], rel=rtol, abs=0)
            perturbed = pytest.approx(expected["average_perturb_loss"], rel=rtol, abs=0)
            assert item["average_perturb_loss"] == perturbed


def test_tofu_with_retain_model_gives_forget_quality_one(tiny_model_dir, tofu_dir, tmp_path):
    out = tmp_path / "with-retain.json"
    code, stdout, stderr = run_cli(
        tofu_args(tiny_model_dir, tofu_dir, out, "--retain-model", tiny_model_dir)
    )
    assert code == 0, stderr
    results = json.loads(out.read_text())
    assert results["summary"]["forget_quality"] == 1.0  # identical truth ratios: KS p = 1
    assert results["summary"]["ks_statistic"] == 0.0
    assert results["summary"]["privleak"] == pytest.approx(0.0, abs=1e-9)
    assert results["retain_reference"]["min_k_auc"] == results["mia"]["min_k_auc"]
    assert "Forget Quality" in stdout


def test_tofu_with_retain_results_gives_forget_quality_one(
    random_run, tiny_model_dir, tofu_dir, tmp_path
):
    out = tmp_path / "with-results.json"
    code, _, stderr = run_cli(
        tofu_args(tiny_model_dir, tofu_dir, out, "--retain-results", random_run["path"])
    )
    assert code == 0, stderr
    results = json.loads(out.read_text())
    assert results["summary"]["forget_quality"] == 1.0
    assert results["summary"]["privleak"] == pytest.approx(0.0, abs=1e-9)
    assert results["retain_reference"]["source"] == str(random_run["path"])
    assert results["summary"]["model_utility"] == random_run["results"]["summary"]["model_utility"]


def test_tofu_forget_quality_of_different_models_is_below_one(
    random_run, trained_model_dir, tofu_dir, tmp_path
):
    out = tmp_path / "trained-vs-random.json"
    retain = tmp_path / "retain.json"
    payload = dict(random_run["results"], mia={})  # no retain Min-40% AUC: no PrivLeak
    retain.write_text(json.dumps(payload))
    code, _, stderr = run_cli(
        tofu_args(trained_model_dir, tofu_dir, out, "--retain-results", retain)
    )
    assert code == 0, stderr
    summary = json.loads(out.read_text())["summary"]
    assert 0 <= summary["forget_quality"] < 1 and summary["ks_statistic"] > 0
    assert "privleak" not in summary


def test_tofu_retain_min_k_auc_of_one_does_not_crash(
    random_run, tiny_model_dir, tofu_dir, tmp_path
):
    retain = tmp_path / "retain.json"
    payload = dict(random_run["results"], mia={"min_k_auc": 1.0})
    retain.write_text(json.dumps(payload))
    out = tmp_path / "R.json"
    code, _, stderr = run_cli(tofu_args(tiny_model_dir, tofu_dir, out, "--retain-results", retain))
    assert code == 0 and "Traceback" not in stderr
    assert json.loads(out.read_text())["summary"]["privleak"] is None
    assert "PrivLeak left out" in stderr


def test_tofu_max_items_limits_every_set(tiny_model_dir, tofu_dir, tmp_path):
    out = tmp_path / "small.json"
    code, _, stderr = run_cli(tofu_args(tiny_model_dir, tofu_dir, out, "--max-items", "2"))
    assert code == 0, stderr
    results = json.loads(out.read_text())
    for name in ("forget", "retain", "real_authors", "world_facts"):
        items = results["sets"][name]["items"]
        assert len(items) == 2, name
    assert [i["question"] for i in results["sets"]["forget"]["items"]] == [q for q, _ in FORGET[:2]]
    assert results["options"]["max_items"] == 2


def test_tofu_missing_split_file_fails_cleanly(tiny_model_dir, tofu_copy, tmp_path):
    (tofu_copy / "world_facts_perturbed.json").unlink()
    out = tmp_path / "R.json"
    code, _, stderr = run_cli(tofu_args(tiny_model_dir, tofu_copy, out))
    assert code == 2
    assert "world_facts_perturbed.json" in _one_line_error(stderr, after_model=True)
    assert not out.exists()


def test_tofu_ragged_perturbed_answers_fail_cleanly(tiny_model_dir, tofu_copy, tmp_path):
    rows = perturbed_rows(FORGET, 5, True)
    rows[1]["perturbed_answer"] = rows[1]["perturbed_answer"][:4]
    write_jsonl(tofu_copy / "forget01_perturbed.json", rows)
    out = tmp_path / "R.json"
    code, _, stderr = run_cli(tofu_args(tiny_model_dir, tofu_copy, out))
    assert code == 2
    line = _one_line_error(stderr, after_model=True)
    assert "forget01_perturbed" in line and "perturbed answers" in line
    assert not out.exists()


@pytest.mark.parametrize(
    "content",
    ["{}", "", '{"sets": {"forget": {"items": []}}}', "[1, 2]"],
    ids=["empty-object", "empty-file", "no-items", "array"],
)
def test_tofu_bad_retain_results_fail_cleanly(content, tiny_model_dir, tofu_dir, tmp_path):
    reference = tmp_path / "retain.json"
    reference.write_text(content)
    out = tmp_path / "R.json"
    code, _, stderr = run_cli(
        tofu_args(tiny_model_dir, tofu_dir, out, "--retain-results", reference)
    )
    assert code == 2
    assert "retain.json" in _one_line_error(stderr)
    assert not out.exists()


def test_tofu_retain_split_as_forget_split_is_refused(tiny_model_dir, tofu_dir, tmp_path):
    out = tmp_path / "R.json"
    argv = tofu_args(tiny_model_dir, tofu_dir, out)
    argv[argv.index("forget01")] = "retain90"
    code, _, stderr = run_cli(argv)
    assert code == 2
    assert "retain90" in _one_line_error(stderr)
    assert not out.exists()


def test_tofu_out_pointing_to_a_folder_is_refused(tiny_model_dir, tofu_dir, tmp_path):
    out = tmp_path / "results-folder"
    out.mkdir()
    code, _, stderr = run_cli(tofu_args(tiny_model_dir, tofu_dir, out, "--max-items", "1"))
    assert code == 2
    assert "is a folder" in _one_line_error(stderr, after_model=True)
    assert out.is_dir() and not any(out.iterdir())


def test_tofu_retain_model_and_results_together_are_refused(
    tiny_model_dir, tofu_dir, tofu_run, tmp_path
):
    out = tmp_path / "R.json"
    code, _, stderr = run_cli(
        tofu_args(
            tiny_model_dir,
            tofu_dir,
            out,
            "--retain-model",
            tiny_model_dir,
            "--retain-results",
            tofu_run["path"],
        )
    )
    assert code == 2
    assert "not both" in _one_line_error(stderr)
    assert not out.exists()


# --------------------------------------------------------------------------- eval aggregate


@pytest.fixture(scope="module")
def tofu_logs() -> Path:
    from tif_unlearn.data.tofu import default_tofu_dir

    base = default_tofu_dir()
    logs = base / "eval-logs-llama2-7b" if base else None
    if logs is None or not (logs / "full").is_dir() or not (logs / "retain90").is_dir():
        pytest.skip(f"TOFU evaluation logs not found (looked in {logs}); set TIF_TOFU_DIR")
    return logs


UTILITY_KEYS = [
    f"{name}_{metric}"
    for name in ("retain", "real_authors", "world_facts")
    for metric in ("prob", "rouge", "truth_ratio")
]


def test_aggregate_full_vs_retain90(tofu_logs):
    code, stdout, stderr = run_cli(
        [
            "eval",
            "aggregate",
            "--forget-logs",
            tofu_logs / "full",
            "--retain-logs",
            tofu_logs / "retain90",
        ]
    )
    assert code == 0, stderr
    summary = json.loads(stdout)  # the whole of stdout is one JSON object
    assert 0 <= summary["forget_quality"] < 1e-5  # the full model has not forgotten
    assert set(UTILITY_KEYS) <= set(summary)
    components = [summary[key] for key in UTILITY_KEYS]
    assert all(0 < c <= 1 for c in components)
    harmonic_mean = len(components) / sum(1 / c for c in components)
    assert summary["model_utility"] == pytest.approx(harmonic_mean, rel=1e-12)
    # retain_prob recomputed from the log file: mean of exp(-avg_gt_loss).
    log = json.loads((tofu_logs / "full" / "eval_log.json").read_text())
    losses = list(log["avg_gt_loss"].values())
    expected = sum(math.exp(-loss) for loss in losses) / len(losses)
    assert summary["retain_prob"] == pytest.approx(expected, rel=1e-12)


def test_aggregate_retain90_against_itself_is_one(tofu_logs):
    logs = tofu_logs / "retain90"
    code, stdout, stderr = run_cli(
        ["eval", "aggregate", "--forget-logs", logs, "--retain-logs", logs]
    )
    assert code == 0, stderr
    assert json.loads(stdout)["forget_quality"] == 1.0


def test_aggregate_without_retain_logs_has_no_forget_quality(tofu_logs):
    code, stdout, stderr = run_cli(["eval", "aggregate", "--forget-logs", tofu_logs / "full"])
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["forget_quality"] is None and 0 < summary["model_utility"] <= 1


def test_aggregate_missing_folder_fails_cleanly(tmp_path):
    missing = tmp_path / "no-such-logs"
    code, stdout, stderr = run_cli(["eval", "aggregate", "--forget-logs", missing])
    assert code == 2 and stdout == ""
    assert "no-such-logs" in _one_line_error(stderr)


# --------------------------------------------------------------------------- eval muse


@pytest.fixture(scope="module")
def muse_dir(tmp_path_factory) -> Path:
    return write_muse_folder(tmp_path_factory.mktemp("muse") / "muse-news")


def muse_args(model, data, out, *extra) -> list[str]:
    return [
        "eval",
        "muse",
        "--model",
        str(model),
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--max-items",
        "3",
        *map(str, extra),
    ]


def test_muse_results_and_privleak_formula(tiny_model_dir, muse_dir, tmp_path):
    out = tmp_path / "muse.json"
    code, stdout, stderr = run_cli(muse_args(tiny_model_dir, muse_dir, out, "--retain-auc", 0.5))
    assert code == 0, stderr
    results = json.loads(out.read_text())
    summary = results["summary"]
    for key in ("verbmem_f1", "knowmem_forget_f1", "knowmem_retain_f1", "min_k_auc"):
        assert 0 <= summary[key] <= 1, key
    for name in ("verbmem", "knowmem_forget", "knowmem_retain"):
        assert len(results["sets"][name]) == 3, name
    mean_f1 = sum(i["rougeL_f1"] for i in results["sets"]["verbmem"]) / 3
    assert summary["verbmem_f1"] == pytest.approx(mean_f1)
    auc = summary["min_k_auc"]
    # MUSE's scale is 1 - auc: ((1 - auc) - (1 - 0.5)) / (1 - 0.5) * 100.
    assert summary["privleak"] == pytest.approx(((1 - auc) - (1 - 0.5)) / (1 - 0.5) * 100)
    assert "PrivLeak (%)" in stdout and f"results written to {out}" in stdout


def test_muse_without_retain_auc_has_no_privleak(tiny_model_dir, muse_dir, tmp_path):
    out = tmp_path / "muse.json"
    code, stdout, stderr = run_cli(muse_args(tiny_model_dir, muse_dir, out))
    assert code == 0, stderr
    summary = json.loads(out.read_text())["summary"]
    assert summary.get("privleak") is None and 0 <= summary["min_k_auc"] <= 1
    assert "PrivLeak" not in stdout


def test_muse_missing_privleak_file_fails_cleanly(tiny_model_dir, muse_dir, tmp_path):
    data = Path(shutil.copytree(muse_dir, tmp_path / "muse-news"))
    (data / "privleak" / "holdout.json").unlink()
    out = tmp_path / "muse.json"
    code, _, stderr = run_cli(muse_args(tiny_model_dir, data, out))
    assert code == 2
    assert "holdout.json" in _one_line_error(stderr, after_model=True)
    assert not out.exists()


# --------------------------------------------------------------------------- during training


def test_unlearn_evaluates_during_training_and_keeps_the_best_step(
    tiny_model_dir, qa_files, tofu_dir, tmp_path
):
    from tif_unlearn.evaluate.tofu import evaluate_tofu
    from tif_unlearn.evaluate.tofu_data import TofuEvalOptions
    from tif_unlearn.models import load_model

    out = tmp_path / "unlearned"
    argv = [
        "unlearn",
        "--model",
        str(tiny_model_dir),
        "--method",
        "ga",
        "--forget",
        str(qa_files["plain"]),
        "--out",
        str(out),
        "--max-steps",
        "3",
        "--batch-size",
        "2",
        "--lr",
        "5e-3",
        "--warmup-epochs",
        "0",
        "--eval-every",
        "1",
        "--eval-data-dir",
        str(tofu_dir),
        "--eval-max-items",
        "3",
        "--keep-best",
        "retain_prob",
    ]
    code, _, stderr = run_cli(argv)
    assert code == 0, stderr
    run = json.loads((out / "tif_run.json").read_text())
    steps = [entry["step"] for entry in run["eval"]]
    assert steps == [1, 2, 3]
    best = max(run["eval"], key=lambda entry: entry["retain_prob"])
    assert run["kept_best"] == {
        "step": best["step"],
        "metric": "retain_prob",
        "value": best["retain_prob"],
    }
    # The saved weights are the kept step's: re-evaluating them gives the recorded number.
    model, tokenizer = load_model(str(out))
    options = TofuEvalOptions(
        data_dir=str(tofu_dir), max_items=3, max_new_tokens=32, sets=("forget", "retain")
    )
    again = evaluate_tofu(model, tokenizer, options)["summary"]["retain_prob"]
    assert again == pytest.approx(best["retain_prob"], rel=1e-4)


def test_keep_best_without_eval_every_is_refused(tiny_model_dir, qa_files, tmp_path):
    argv = [
        "unlearn",
        "--model",
        str(tiny_model_dir),
        "--method",
        "ga",
        "--forget",
        str(qa_files["plain"]),
        "--out",
        str(tmp_path / "o"),
        "--keep-best",
        "forget_rouge",
    ]
    code, _, stderr = run_cli(argv)
    assert code == 2 and "--keep-best needs --eval-every" in stderr
