"""Each method hyperparameter has one home (its method's config class in ``config.methods``):
the ``tif unlearn`` options, the presets' keys and the method registry are derived from it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing

import pytest

from tif_unlearn.config import UnlearnConfig
from tif_unlearn.config.methods import LPL_SPACES, METHOD_CONFIGS, METHOD_OPTIONS
from tif_unlearn.config.presets import Preset
from tif_unlearn.methods import METHODS
from tif_unlearn.methods import tif as tif_method


def test_every_registered_method_reads_its_config_class():
    assert {name: m.config_cls for name, m in METHODS.items()} == METHOD_CONFIGS


def test_unlearn_config_has_one_unset_option_per_hyperparameter():
    hints = typing.get_type_hints(UnlearnConfig)
    names = {f.name for cls in METHOD_CONFIGS.values() for f in dataclasses.fields(cls)}
    assert set(METHOD_OPTIONS) == names
    for cls in METHOD_CONFIGS.values():
        for option in dataclasses.fields(cls):
            assert hints[option.name] == typing.get_type_hints(cls)[option.name] | None
    unset = UnlearnConfig(out="o", forget="f")
    assert all(getattr(unset, name) is None for name in METHOD_OPTIONS)


def test_an_option_shared_by_methods_has_one_type():
    seen: dict[str, type] = {}
    for cls in METHOD_CONFIGS.values():
        for name, kind in typing.get_type_hints(cls).items():
            assert seen.setdefault(name, kind) == kind, name


def test_the_help_lists_every_methods_default():
    help_text = next(f for f in dataclasses.fields(UnlearnConfig) if f.name == "beta").metadata
    assert "tif 0.32" in help_text["help"] and "simnpo 4.5" in help_text["help"]


def test_tif_maps_every_lpl_space_to_code():
    assert tuple(tif_method.LPL_SPACES) == LPL_SPACES


def test_a_preset_key_that_is_no_hyperparameter_fails_when_defined():
    with pytest.raises(TypeError, match="betta"):
        Preset(method="tif", hyperparameters={"betta": 0.3}, schedule={})
    with pytest.raises(ValueError, match="beta must be > 0"):
        Preset(method="tif", hyperparameters={"beta": -1.0}, schedule={})
    with pytest.raises(ValueError, match="epoch"):
        Preset(method="tif", hyperparameters={}, schedule={"epoch": 3})


def test_the_config_and_the_command_line_parser_load_without_torch():
    code = (
        "import sys, tif_unlearn.config, tif_unlearn.cli.app as app; app.build_parser(); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
