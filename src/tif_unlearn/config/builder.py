"""Building a run's config: built-in defaults < preset < YAML file (``--config``) < command
line, each value coerced to its option's type; unknown keys fail."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import fields
from pathlib import Path

from ..errors import TifError
from .presets import apply_preset


def load_yaml(path: str | Path) -> dict:
    """Read a flat YAML mapping of option names (dashes or underscores) to values."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise TifError(f"config file {path} not found") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise TifError(f"config file {path}: {str(err).splitlines()[0]}") from err
    if data is None:
        return {}
    if not isinstance(data, dict) or any(isinstance(v, dict | list) for v in data.values()):
        raise TifError(f"config file {path} must be a flat mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_config(cls, yaml_path: str | None, overrides: dict):
    """Merge YAML values and command-line overrides (non-None) into ``cls``; unknown keys fail."""
    values = load_yaml(yaml_path) if yaml_path else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(cls)}
    if "preset" in known:  # built-in default < preset < YAML < command line
        values = apply_preset(values)
    unknown = sorted(set(values) - known)
    if unknown:
        raise TifError(f"unknown option(s) in config: {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    values = {name: coerce_option(name, value, hints[name]) for name, value in values.items()}
    return cls(**values)


def coerce_option(name: str, value, hint):
    """Convert a YAML value to the option's type (YAML reads ``1e-5`` as a string)."""
    if value is None:  # `lr:` or `lr: null` in YAML: only for options that may be unset
        if type(None) in typing.get_args(hint):
            return None
        raise TifError(f"option {name}: expected a value, got null")
    kind = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false", "yes", "no"):
            return str(value).lower() in ("true", "yes")
    elif kind in (int, float) and not isinstance(value, bool):
        try:
            converted = kind(value)
            if kind is int and isinstance(value, float) and converted != value:
                raise ValueError
            return converted
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(.inf)
            pass
    elif kind is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise TifError(f"option {name}: expected {kind.__name__}, got {value!r}")


def as_dict(config) -> dict:
    """The config as plain values; secret options (``--token``) are None: never written to
    ``tif_run.json``, checkpoints, the model card or a log."""
    values = dataclasses.asdict(config)
    for f in fields(config):
        if f.metadata.get("secret"):
            values[f.name] = None
    return values
