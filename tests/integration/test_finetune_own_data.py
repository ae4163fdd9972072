"""`tif finetune` on your own data (issue 34): several --data files, a warning when the
fine-tuned model cannot recite its training answers (skippable), and `tif ask`."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

from conftest import QA_PAIRS, write_jsonl
from tif_unlearn.cli.app import main
from tif_unlearn.config import FinetuneConfig
from tif_unlearn.errors import TifError
from tif_unlearn.recitation import (
    MIN_RECITATION,
    recitation_recall,
    recitation_warning,
    spread_sample,
)
from tif_unlearn.train import run_finetune

POOR = "recites its training answers poorly"


def test_spread_sample_picks_evenly():
    assert spread_sample(list(range(10)), 4) == [0, 2, 5, 7]  # k * 10 // 4 for k = 0..3
    assert spread_sample([1, 2], 8) == [1, 2]


def test_recitation_recall_on_hand_counted_numbers():
    # "the cat" vs "the cat sat down": LCS 2 of the reference's 4 words -> recall 0.5;
    # an exact answer -> 1.0; mean 0.75
    recall = recitation_recall(["the cat", "Paris"], ["the cat sat down", "Paris"])
    assert recall == pytest.approx(0.75)
    assert MIN_RECITATION == 0.8 and recitation_warning(0.8, 8) is None
    warning = recitation_warning(0.75, 2)
    assert POOR in warning and "0.75 on 2 training questions" in warning
    assert "--recall-check 0" in warning and "\n" not in warning


def test_several_data_files_are_one_training_set(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    config = FinetuneConfig(data=f"{a}, {b}", out=str(tmp_path / "ft"))
    assert config.data_sources() == (str(a), str(b))
    comma = tmp_path / "x,y.jsonl"
    comma.write_text("")
    assert FinetuneConfig(data=str(comma), out="o").data_sources() == (str(comma),)
    with pytest.raises(TifError, match="recall_check must be >= 0"):
        FinetuneConfig(data=str(a), out="o", recall_check=-1)


def test_finetune_reads_every_data_file(tiny_model_dir, tmp_path):
    first = write_jsonl(tmp_path / "person.jsonl", QA_PAIRS[:3])
    second = write_jsonl(tmp_path / "general.jsonl", QA_PAIRS[3:])
    config = FinetuneConfig(
        model=str(tiny_model_dir), data=f"{first},{second}", out=str(tmp_path / "ft"),
        max_steps=1, recall_check=0,
    )  # fmt: skip
    record = json.loads((run_finetune(config) / "tif_run.json").read_text())
    assert record["examples"] == len(QA_PAIRS)
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    expected = hashlib.sha256(",".join(digests).encode()).hexdigest()
    assert record["data"] == {"source": f"{first},{second}", "sha256": expected}


@pytest.mark.parametrize("checked", [4, 0])
def test_a_model_that_cannot_recite_is_warned_about(
    tiny_model_dir, qa_files, tmp_path, caplog, checked
):
    config = FinetuneConfig(
        model=str(tiny_model_dir), data=str(qa_files["plain"]), out=str(tmp_path / "ft"),
        max_steps=1, recall_check=checked,
    )  # fmt: skip
    with caplog.at_level(logging.INFO, logger="tif_unlearn"):
        run_finetune(config)  # one step of a random tiny model: it recites nothing
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(POOR in w for w in warnings) == bool(checked), warnings


def test_ask_prints_the_greedy_answer(tiny_model_dir, capsys):
    argv = ["ask", "--model", str(tiny_model_dir), "--max-new-tokens", "3"]
    assert main([*argv, "Where was Basil born?"]) == 0
    first = capsys.readouterr().out
    assert first.strip() and not first.startswith("Q:")
    assert main([*argv, "Where was Basil born?"]) == 0
    assert capsys.readouterr().out == first  # greedy: the same answer every time
    assert main([*argv, "One?", "Two?"]) == 0
    assert capsys.readouterr().out.count("Q: ") == 2


def test_ask_without_a_question_fails_in_one_line(tiny_model_dir, capsys):
    assert main(["ask", "--model", str(tiny_model_dir), " "]) == 2
    assert "give at least one question" in capsys.readouterr().err
