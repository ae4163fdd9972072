"""Presets: the paper's recipes, and the order default < preset < YAML < command line."""

from __future__ import annotations

import pytest

from tif_unlearn.config import UnlearnConfig, build_config
from tif_unlearn.config.methods import method_config
from tif_unlearn.config.presets import PRESETS, apply_preset
from tif_unlearn.errors import TifError
from tif_unlearn.methods import METHODS

REQUIRED = {"out": "o", "forget": "f.json"}


def _config(overrides: dict, yaml_path=None) -> UnlearnConfig:
    return build_config(UnlearnConfig, yaml_path, {**REQUIRED, **overrides})


def test_muse_preset_is_the_papers_muse_recipe():
    config = _config({"preset": "muse"})
    hyper = method_config(METHODS[config.method], config)
    # DESIGN.md: beta 0.2, L = 0.1 * (L_LPL + lambda_PL * L_PL) + NLL_retain, constant lr 1e-5
    assert config.method == "tif" and hyper.beta == 0.2
    assert hyper.forget_scale == 0.1 and hyper.lambda_pl == 1.0 and hyper.lambda_retain == 1.0
    assert config.lr == 1e-5 and config.scheduler == "constant" and config.warmup_epochs == 0
    # The paper trains MUSE on 2048-token windows (256 made the Preservation Loss, a per-sample
    # sum, about 8x smaller next to the LPL).
    assert config.window_length == 2048 and config.max_length > config.window_length


def test_tofu_preset_is_the_papers_tofu_recipe():
    config = _config({"preset": "tofu"})
    hyper = method_config(METHODS[config.method], config)
    assert (hyper.beta, hyper.forget_scale, hyper.lambda_pl, hyper.lambda_retain) == (
        0.32,
        1.0,
        1.0,
        1.0,
    )
    assert config.lr == 1e-5 and config.epochs == 10 and config.weight_decay == 0.01
    assert config.batch_size * config.grad_accum == 32
    assert config.scheduler == "linear" and config.warmup_epochs == 1.0


def test_no_preset_keeps_the_built_in_defaults():
    config = _config({})
    assert config.preset is None and config.scheduler == "linear" and config.beta is None


def test_yaml_overrides_the_preset_and_the_command_line_overrides_both(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("preset: muse\nbeta: 0.4\nlr: 2e-5\n")
    config = _config({"lr": 3e-5}, yaml_file)
    assert config.beta == 0.4  # YAML beats the preset's 0.2
    assert config.lr == 3e-5  # the command line beats YAML and the preset
    assert config.forget_scale == 0.1 and config.scheduler == "constant"  # from the preset
    assert _config({"preset": "tofu"}, yaml_file).beta == 0.4  # --preset on the command line


def test_preset_hyperparameters_are_tifs_only():
    config = _config({"preset": "muse", "method": "npo"})
    assert config.forget_scale is None and config.lambda_pl is None
    assert config.beta is None and config.scheduler == "constant"  # NPO keeps its own beta
    method_config(METHODS["npo"], config)  # no "does not apply" error
    ga = _config({"preset": "tofu", "method": "ga"})
    assert method_config(METHODS["ga"], ga) is not None and ga.epochs == 10


def test_unknown_preset_and_presets_are_plain_dicts():
    with pytest.raises(TifError, match="unknown preset 'x'.*muse, tofu"):
        _config({"preset": "x"})
    assert apply_preset({"lr": 1.0}) == {"lr": 1.0}
    fields = set(UnlearnConfig.__dataclass_fields__)
    for preset in PRESETS.values():
        assert {"method", *preset.hyperparameters, *preset.schedule} <= fields


@pytest.mark.parametrize("n_examples, steps", [(40, 12), (200, 62), (400, 125)])
def test_tofu_preset_takes_the_papers_step_count(n_examples, steps):
    # floor(10 epochs x N / 32): forget01 (40) 12 steps, forget05 (200) 62, forget10 (400) 125.
    from tif_unlearn.train.schedule import step_plan

    plan = step_plan(_config({"preset": "tofu"}), n_examples)
    assert plan.steps == steps
    assert plan.samples == steps * 32  # only full windows of 32 examples
    assert plan.warmup == round(n_examples / 32)  # one epoch of warm-up


def test_default_step_count_still_ends_each_epoch_with_a_step():
    from tif_unlearn.train.schedule import step_plan

    plan = step_plan(_config({"batch_size": 4, "grad_accum": 8, "epochs": 10}), 40)
    assert (plan.steps, plan.samples) == (20, None)  # ceil(40 / 32) = 2 steps per epoch
