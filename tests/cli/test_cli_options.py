"""Every subcommand's flags are the fields of the dataclasses it declares (cli/options.py): no
flag without a field, no field without a flag, and parsed flags build those dataclasses back."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import MISSING

import pytest

from tif_unlearn.cli import app, ask, card, eval_qa, identify, report
from tif_unlearn.cli import eval as eval_cli
from tif_unlearn.cli.app import build_parser
from tif_unlearn.cli.options import Flags, value_type
from tif_unlearn.cli.reference import _walk
from tif_unlearn.cli.results_file import ResultsFile
from tif_unlearn.config import FinetuneConfig, UnlearnConfig, build_config
from tif_unlearn.demo import DemoConfig
from tif_unlearn.evaluate.options import (
    MuseEvalOptions,
    QAEvalFiles,
    QAEvalOptions,
    TofuEvalOptions,
)
from tif_unlearn.train.precision import EvalPrecision

DECLARED = {
    "tif finetune": app.FINETUNE,
    "tif unlearn": app.UNLEARN,
    "tif eval tofu": eval_cli.TOFU,
    "tif eval muse": eval_cli.MUSE,
    "tif eval aggregate": eval_cli.AGGREGATE,
    "tif eval qa": eval_qa.QA,
    "tif identify": identify.IDENTIFY,
    "tif report": report.REPORT,
    "tif ask": ask.ASK,
    "tif card": card.CARD,
    "tif demo": app.DEMO,
}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return dict(_walk(build_parser(), "tif"))


def flag_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def test_every_subcommand_is_declared():
    assert set(subcommands()) == set(DECLARED)


@pytest.mark.parametrize("path", DECLARED)
def test_the_flags_are_the_fields_of_the_declared_dataclasses(path):
    actions = flag_actions(subcommands()[path])
    fields = [f.name for part in DECLARED[path].flags for f in part.fields()]
    assert sorted(a.dest for a in actions) == sorted(fields)
    for action in actions:
        name = action.dest.replace("_", "-")
        positional = [] if action.nargs == "+" else None  # tif report's RESULTS
        assert action.option_strings in ([f"--{name}"], [f"--no-{name}"], positional)
        assert action.help.split("(default:")[0].strip(), f"{action.dest}: no help"


def sample(part: Flags, field, hint) -> tuple[list[str], object]:
    """A value other than the default for ``field`` and the command-line words that give it."""
    default = None if field.default is MISSING else field.default
    kind = value_type(hint)
    if kind is bool:
        return [], True if part.yaml else not default
    if "choices" in field.metadata:
        value = field.metadata["choices"][-1]
    elif kind is int:
        value = (default or 0) + 3
    elif kind is float:
        value = (default or 0) + 0.25
    elif typing.get_origin(hint) is tuple:
        return ["a,b"], ("a", "b")
    else:
        value = f"x-{field.name}"
    return [str(value)], value


@pytest.mark.parametrize("path", DECLARED)
def test_every_flag_parses_to_its_field_value(path):
    parser, argv, expected = subcommands()[path], path.split()[1:], {}
    flags = {a.dest: a.option_strings[:1] for a in flag_actions(parser)}
    for part in DECLARED[path].flags:
        hints = typing.get_type_hints(part.cls)
        for field in part.fields():
            words, expected[field.name] = sample(part, field, hints[field.name])
            if field.metadata.get("positional"):
                words, expected[field.name] = ["a.json", "b.json"], ("a.json", "b.json")
            argv += [*flags[field.name], *words]
    args = build_parser().parse_args(argv)
    parsed = {k: v for part in DECLARED[path].flags for k, v in part.values(args).items()}
    assert parsed == expected


# A realistic command line per subcommand and the dataclasses its handler builds from it.
BUILT = {
    "eval tofu": (
        "--model m --forget-split forget05 --max-items 3 --batch-size 2 --max-new-tokens 5 "
        "--retain-results r.json --out o.json --dtype float16 --threads 2",
        [
            eval_cli.EvaluatedModel("m"),
            TofuEvalOptions(forget_split="forget05", max_items=3, batch_size=2, max_new_tokens=5),
            eval_cli.RetainModel(retain_results="r.json"),
            ResultsFile("o.json"),
            EvalPrecision("float16", 2),
        ],
    ),
    "eval muse": (
        "--model m --data-dir d --corpus books --max-items 4 --batch-size 3 --retain-auc 0.5 "
        "--out o.json",
        [
            eval_cli.EvaluatedModel("m"),
            MuseEvalOptions(
                data_dir="d", corpus="books", max_items=4, batch_size=3, retain_auc=0.5
            ),
            ResultsFile("o.json"),
            EvalPrecision(),
        ],
    ),
    "eval aggregate": ("--forget-logs f", [eval_cli.AggregateLogs("f")]),
    "eval qa": (
        "--model m --forget f.jsonl --holdout h.jsonl --identifier annotations --leak-samples 0 "
        "--temperature 0.5 --seed 3 --no-format-shift --window-length 64 --out o.json",
        [
            QAEvalFiles("m", "f.jsonl", holdout="h.jsonl"),
            QAEvalOptions(
                identifier="annotations",
                leak_samples=0,
                temperature=0.5,
                seed=3,
                format_shift=False,
                window_length=64,
            ),
            ResultsFile("o.json"),
            EvalPrecision(),
        ],
    ),
    "identify": (
        "--identifier combined --data d.jsonl --out o.jsonl --members ner --threshold 3.5 --score",
        [
            identify.IdentifyArgs(
                "combined", "d.jsonl", "o.jsonl", members="ner", threshold=3.5, score=True
            )
        ],
    ),
    "demo": (
        "--methods tif,ga --forget-person 2 --out runs/d --fresh",
        [DemoConfig(methods=("tif", "ga"), forget_person=2, out="runs/d", fresh=True)],
    ),
}


@pytest.mark.parametrize("command", BUILT)
def test_parsed_flags_build_the_declared_dataclasses(command):
    words, expected = BUILT[command]
    args = build_parser().parse_args([*command.split(), *words.split()])
    assert [part.build(args) for part in DECLARED[f"tif {command}"].flags] == expected


def test_qa_takes_its_dtype_from_the_precision_flags_not_from_its_own_default():
    words = ["eval", "qa", "--model", "m", "--forget", "f", "--out", "o", "--dtype", "float16"]
    args = build_parser().parse_args(words)
    assert eval_qa.QA_OPTIONS.build(args, dtype="float16").dtype == "float16"
    assert eval_qa.PRECISION.build(args) == EvalPrecision("float16")


@pytest.mark.parametrize("cls", [FinetuneConfig, UnlearnConfig])
def test_training_flags_that_are_not_given_leave_the_yaml_and_the_defaults_alone(cls):
    command, data = ("finetune", "data") if cls is FinetuneConfig else ("unlearn", "forget")
    words = [command, f"--{data}", "d", "--out", "o", "--lr", "0.5", "--bf16", "--max-steps", "7"]
    values = DECLARED[f"tif {command}"].flags[0].values(build_parser().parse_args(words))
    given = {data: "d", "out": "o", "lr": 0.5, "bf16": True, "max_steps": 7}
    assert {name: value for name, value in values.items() if value is not None} == given
    config = build_config(cls, None, values)
    assert (config.out, config.lr, config.bf16, config.max_steps) == ("o", 0.5, True, 7)
    assert config.epochs == next(f.default for f in dataclasses.fields(cls) if f.name == "epochs")
