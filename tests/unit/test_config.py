"""Run configurations: validation, YAML + override merging, method options."""

from __future__ import annotations

import pytest

from tif_unlearn.config import FinetuneConfig, UnlearnConfig, build_config
from tif_unlearn.config.builder import load_yaml
from tif_unlearn.config.methods import TifConfig, method_config
from tif_unlearn.errors import TifError
from tif_unlearn.methods import METHODS

REQUIRED_UNLEARN = {"out": "out-model", "forget": "forget.jsonl"}
REQUIRED_FINETUNE = {"out": "out-model", "data": "data.jsonl"}


# --------------------------------------------------------------------------- validation


def test_valid_configs_build_with_defaults():
    unlearn = UnlearnConfig(**REQUIRED_UNLEARN)
    assert (unlearn.method, unlearn.lr, unlearn.epochs, unlearn.scheduler) == (
        "tif",
        1e-5,
        10.0,
        "linear",
    )
    assert unlearn.beta is None and unlearn.gamma is None
    finetune = FinetuneConfig(**REQUIRED_FINETUNE)
    assert finetune.epochs == 5.0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("lr", -1e-5, "lr"),
        ("lr", 0.0, "lr"),
        ("epochs", 0, "epochs"),
        ("epochs", -1.0, "epochs"),
        ("batch_size", 0, "batch_size"),
        ("grad_accum", 0, "grad_accum"),
        ("max_steps", 0, "max_steps"),
        ("weight_decay", -0.1, "weight_decay"),
        ("warmup_epochs", -1.0, "warmup_epochs"),
        ("scheduler", "exponential", "scheduler"),
        ("max_length", 4, "max_length"),
        ("dtype", "int8", "dtype"),
    ],
)
@pytest.mark.parametrize(
    ("cls", "required"), [(UnlearnConfig, REQUIRED_UNLEARN), (FinetuneConfig, REQUIRED_FINETUNE)]
)
def test_invalid_values_raise_tif_error(cls, required, option, value, message):
    with pytest.raises(TifError, match=message):
        cls(**required, **{option: value})


@pytest.mark.parametrize("scheduler", ["linear", "constant", "cosine", "constant_with_warmup"])
def test_known_schedulers_are_accepted(scheduler):
    assert UnlearnConfig(**REQUIRED_UNLEARN, scheduler=scheduler).scheduler == scheduler


def test_max_steps_minus_one_means_off():
    assert UnlearnConfig(**REQUIRED_UNLEARN, max_steps=-1).max_steps == -1
    assert UnlearnConfig(**REQUIRED_UNLEARN, max_steps=3).max_steps == 3


@pytest.mark.parametrize(
    ("cls", "values", "flag"),
    [
        (UnlearnConfig, {"forget": "f.jsonl"}, "--out"),
        (UnlearnConfig, {"out": "o"}, "--forget"),
        (FinetuneConfig, {"data": "d.jsonl"}, "--out"),
        (FinetuneConfig, {"out": "o"}, "--data"),
    ],
)
def test_missing_required_paths_raise(cls, values, flag):
    with pytest.raises(TifError, match=flag):
        cls(**values)


def test_reference_batch_size_must_be_positive():
    with pytest.raises(TifError, match="reference_batch_size"):
        UnlearnConfig(**REQUIRED_UNLEARN, reference_batch_size=0)


# --------------------------------------------------------------------------- YAML + overrides


def write(tmp_path, text: str, name: str = "run.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_build_config_merges_yaml_and_overrides(tmp_path):
    path = write(
        tmp_path,
        "lr: 0.001\nbatch-size: 2\nmax_steps: 7\nscheduler: cosine\nforget: yaml-forget.jsonl\n",
    )
    overrides = {
        "lr": 0.01,  # non-None: wins over the YAML
        "batch_size": None,  # None: the YAML value stays
        "scheduler": None,
        "forget": "cli-forget.jsonl",
        "out": "cli-out",
        "beta": None,
    }
    config = build_config(UnlearnConfig, str(path), overrides)
    assert isinstance(config, UnlearnConfig)
    assert config.lr == 0.01
    assert config.batch_size == 2
    assert config.max_steps == 7
    assert config.scheduler == "cosine"
    assert config.forget == "cli-forget.jsonl"
    assert config.out == "cli-out"
    assert config.beta is None
    assert config.epochs == 10.0  # in neither: the dataclass default


def test_build_config_dashes_and_underscores_are_the_same_option(tmp_path):
    dashes = write(tmp_path, "warmup-epochs: 0.5\nreference-batch-size: 3\n", "a.yaml")
    unders = write(tmp_path, "warmup_epochs: 0.5\nreference_batch_size: 3\n", "b.yaml")
    for path in (dashes, unders):
        config = build_config(UnlearnConfig, str(path), dict(REQUIRED_UNLEARN))
        assert config.warmup_epochs == 0.5
        assert config.reference_batch_size == 3


def test_build_config_without_yaml_uses_overrides_only():
    config = build_config(FinetuneConfig, None, {**REQUIRED_FINETUNE, "lr": 3e-4, "epochs": None})
    assert isinstance(config, FinetuneConfig)
    assert config.lr == 3e-4
    assert config.epochs == 5.0


def test_build_config_yaml_values_are_validated(tmp_path):
    path = write(tmp_path, "batch_size: 0\n")
    with pytest.raises(TifError, match="batch_size"):
        build_config(UnlearnConfig, str(path), dict(REQUIRED_UNLEARN))


def test_build_config_override_can_fix_a_bad_yaml_value(tmp_path):
    path = write(tmp_path, "scheduler: bogus\n")
    config = build_config(UnlearnConfig, str(path), {**REQUIRED_UNLEARN, "scheduler": "constant"})
    assert config.scheduler == "constant"


def test_unknown_yaml_key_raises(tmp_path):
    path = write(tmp_path, "lr: 0.001\nlearning-rate: 0.01\n")
    with pytest.raises(TifError, match="learning_rate"):
        build_config(UnlearnConfig, str(path), dict(REQUIRED_UNLEARN))


def test_option_of_another_config_class_is_unknown(tmp_path):
    # "forget" is an unlearn option, not a fine-tuning one.
    path = write(tmp_path, "forget: f.jsonl\n")
    with pytest.raises(TifError, match="forget"):
        build_config(FinetuneConfig, str(path), dict(REQUIRED_FINETUNE))


@pytest.mark.parametrize(
    "text",
    ["lr:\n  value: 0.001\n", "lr: {value: 0.001}\n", "scheduler: [linear, cosine]\n"],
)
def test_nested_yaml_raises(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(TifError, match="flat mapping"):
        build_config(UnlearnConfig, str(path), dict(REQUIRED_UNLEARN))


@pytest.mark.parametrize("text", ["- lr\n- 0.001\n", "just a string\n"])
def test_yaml_that_is_not_a_mapping_raises(tmp_path, text):
    with pytest.raises(TifError, match="flat mapping"):
        load_yaml(write(tmp_path, text))


def test_malformed_yaml_raises(tmp_path):
    with pytest.raises(TifError, match="run.yaml"):
        load_yaml(write(tmp_path, "lr: [0.001\n"))


def test_missing_yaml_file_raises(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(TifError, match="not found"):
        build_config(UnlearnConfig, str(missing), dict(REQUIRED_UNLEARN))


def test_empty_yaml_file_gives_defaults(tmp_path):
    config = build_config(UnlearnConfig, str(write(tmp_path, "")), dict(REQUIRED_UNLEARN))
    assert config.lr == 1e-5 and config.batch_size == 4


# --------------------------------------------------------------------------- method options


def test_method_config_refuses_an_unused_option():
    config = UnlearnConfig(**REQUIRED_UNLEARN, gamma=0.5)
    with pytest.raises(TifError, match="--gamma") as info:
        method_config(METHODS["tif"], config)
    assert "tif" in str(info.value)


def test_method_config_names_every_unused_option_with_dashes():
    config = UnlearnConfig(**REQUIRED_UNLEARN, method="npo", lambda_pl=2.0, lpl_space="logprob")
    with pytest.raises(TifError) as info:
        method_config(METHODS["npo"], config)
    message = str(info.value)
    assert "--lambda-pl" in message and "--lpl-space" in message
    assert "--beta" not in message


def test_method_config_builds_tif_config_with_given_values():
    config = UnlearnConfig(**REQUIRED_UNLEARN, beta=0.23, lambda_pl=2.0)
    built = method_config(METHODS["tif"], config)
    assert isinstance(built, TifConfig)
    assert built.beta == 0.23
    assert built.lambda_pl == 2.0
    # Options left None take the method's defaults (paper values).
    assert built.lambda_retain == 1.0
    assert built.per_sample is False
    assert built.lpl_space == "logit"


def test_method_config_without_options_gives_method_defaults():
    built = method_config(METHODS["tif"], UnlearnConfig(**REQUIRED_UNLEARN))
    assert built.beta == 0.32


def test_simnpo_accepts_gamma():
    config = UnlearnConfig(**REQUIRED_UNLEARN, method="simnpo", gamma=0.5)
    assert method_config(METHODS["simnpo"], config).gamma == 0.5


@pytest.mark.parametrize("beta", [0.0, -0.3])
def test_non_positive_beta_raises_tif_error(beta):
    config = UnlearnConfig(**REQUIRED_UNLEARN, beta=beta)
    with pytest.raises(TifError, match="beta"):
        method_config(METHODS["tif"], config)


def test_bad_lpl_space_raises_tif_error():
    config = UnlearnConfig(**REQUIRED_UNLEARN, lpl_space="prob")
    with pytest.raises(TifError, match="lpl_space"):
        method_config(METHODS["tif"], config)


def test_yaml_numbers_in_exponent_form_are_converted(tmp_path):
    # PyYAML reads "1e-5" (no decimal point) as a string; the config must still get a float.
    from tif_unlearn.config import UnlearnConfig, build_config
    from tif_unlearn.config.methods import method_config
    from tif_unlearn.methods import METHODS

    path = tmp_path / "run.yaml"
    path.write_text("lr: 1e-5\nbeta: 3e-1\nper-sample: true\nbatch-size: 8\n")
    config = build_config(UnlearnConfig, str(path), {"out": "o", "forget": "f"})
    assert config.lr == 1e-5 and config.batch_size == 8
    tif = method_config(METHODS["tif"], config)
    assert tif.beta == 0.3 and tif.per_sample is True


@pytest.mark.parametrize("line", ["lr: fast", "batch-size: 2.5", "per-sample: maybe", "lr: true"])
def test_yaml_values_of_the_wrong_type_are_refused(tmp_path, line):
    from tif_unlearn.config import UnlearnConfig, build_config
    from tif_unlearn.errors import TifError

    path = tmp_path / "run.yaml"
    path.write_text(line + "\n")
    with pytest.raises(TifError, match="expected"):
        build_config(UnlearnConfig, str(path), {"out": "o", "forget": "f"})


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_config_refuses_negative_weights_and_bad_beta(method):
    config_cls = METHODS[method].config_cls
    names = {f.name for f in __import__("dataclasses").fields(config_cls)}
    for weight in sorted(n for n in names if n.startswith("lambda_") or n == "forget_scale"):
        with pytest.raises(ValueError, match=weight):
            config_cls(**{weight: -0.5})
    if "beta" in names:
        with pytest.raises(ValueError, match="beta must be > 0"):
            config_cls(beta=0.0)
