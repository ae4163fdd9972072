"""Model card lineage (issue 34): the base model and licence of a local starting folder's card
are carried over, `tif eval` scores go into the card (`tif card`), and the card's command line
lists only the options that had an effect."""

from __future__ import annotations

import json
import shutil

import pytest
from huggingface_hub import ModelCard

from tif_unlearn.cli.app import main
from tif_unlearn.config import FinetuneConfig, UnlearnConfig
from tif_unlearn.config.used import used_options
from tif_unlearn.lineage import front_matter, result_metrics, starting_card, with_lineage
from tif_unlearn.train import run_finetune, run_unlearn

PARENT_CARD = "---\nbase_model: acme/base-1b\nlicense: mit\ntags:\n- x\n---\n\n# parent\n"


@pytest.fixture
def parent(tiny_model_dir, tmp_path):
    """A local starting folder whose own card names its base model and licence."""
    folder = tmp_path / "parent"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "README.md").write_text(PARENT_CARD, encoding="utf-8")
    return folder


def test_front_matter_and_the_starting_card(parent, tmp_path):
    assert front_matter(PARENT_CARD)["license"] == "mit"
    assert front_matter("# no front matter") == {} and front_matter("---\n[1, 2\n---\n") == {}
    assert starting_card(str(parent)) == {"base_model": "acme/base-1b", "license": "mit"}
    assert starting_card("smollm2-135m") == {"license": "apache-2.0"}
    assert starting_card(str(tmp_path / "no-such-folder")) == {}


def test_a_card_keeps_its_own_base_model(parent):
    own = "---\nbase_model: other/model\n---\n\nbody\n"
    metadata = ModelCard(with_lineage(own, str(parent))).data.to_dict()
    assert metadata["base_model"] == "other/model" and metadata["license"] == "mit"


def test_unused_options_are_left_out():
    config = {"eval_every": None, "eval_max_items": 40, "eval_forget_split": "forget01"}
    config |= {"lora_r": 0, "lora_alpha": 16.0, "lr": 1e-5}
    assert used_options(config) == {"eval_every": None, "lora_r": 0, "lr": 1e-5}
    evaluated = {"eval_every": 5, "eval_max_items": 40, "lora_r": 8, "lora_alpha": 16.0}
    assert used_options(evaluated) == evaluated


def test_finetune_then_unlearn_cards_carry_the_lineage(parent, qa_files, tmp_path):
    ft = FinetuneConfig(
        model=str(parent), data=str(qa_files["plain"]), out=str(tmp_path / "ft"),
        max_steps=1, recall_check=0,
    )  # fmt: skip
    ft_card = ModelCard.load(run_finetune(ft) / "README.md")
    assert ft_card.data.base_model == "acme/base-1b" and ft_card.data.license == "mit"
    config = UnlearnConfig(
        model=str(tmp_path / "ft"), forget=str(qa_files["forget"]), out=str(tmp_path / "tif"),
        max_steps=1, batch_size=2, beta=0.5,
    )  # fmt: skip
    card = ModelCard.load(run_unlearn(config) / "README.md")
    assert card.data.base_model == "acme/base-1b" and card.data.license == "mit"
    command = card.text.split("```bash\n")[1].split("\n```")[0]
    assert "--lr" in command and "--eval-" not in command and "--lora-alpha" not in command


QA_RESULTS = {
    "benchmark": "qa",
    "model": "runs/tif",
    "forget": {
        "summary": {"model": {"rouge": 0.25, "leak": {"greedy": 0.1}}, "reference": {"rouge": 0.9}}
    },
    "retain": {"summary": {"model": {"rouge": 0.98}}},
}


def test_qa_and_tofu_metrics(tmp_path):
    assert result_metrics(QA_RESULTS) == {
        "forget.rouge": 0.25, "forget.leak.greedy": 0.1, "retain.rouge": 0.98,
    }  # fmt: skip
    tofu = {"benchmark": "tofu", "summary": {"forget_quality": 0.2, "model_utility": 0.4, "n": 3}}
    assert result_metrics(tofu) == {"forget_quality": 0.2, "model_utility": 0.4, "n": 3.0}


def test_tif_card_writes_the_scores_into_the_card(parent, tmp_path, capsys):
    results = tmp_path / "eval-tif.json"
    results.write_text(json.dumps(QA_RESULTS), encoding="utf-8")
    for _ in range(2):  # a second run replaces the scores, never repeats them
        assert main(["card", "--model", str(parent), str(results)]) == 0
    card = ModelCard.load(parent / "README.md")
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics == {"forget.rouge": 0.25, "forget.leak.greedy": 0.1, "retain.rouge": 0.98}
    assert card.data.base_model == "acme/base-1b"  # the rest of the front matter is kept
    assert card.text.count("## Evaluation") == 1 and "| forget.rouge | 0.2500 |" in card.text
    assert card.text.startswith("\n# parent") or "# parent" in card.text


def test_tif_card_refuses_what_is_not_a_results_file(parent, tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text("{}", encoding="utf-8")
    assert main(["card", "--model", str(parent), str(other)]) == 2
    assert "not a tif eval qa, tofu or muse results file" in capsys.readouterr().err
