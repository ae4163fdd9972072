"""Every unlearning method's hyperparameters: one dataclass per method, the one home of each
default and each check. The ``tif unlearn`` options (``--beta``, ``--lambda-pl``, ...), the
YAML keys and the presets' keys are derived from these classes (``config.schema``); the loss
hooks in ``tif_unlearn.methods`` read them. Nothing here imports torch, so the command line
starts fast.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields

from ..errors import TifError

# The token value TIF's LPL compares with the reference (``methods.tif`` maps each to code).
LPL_SPACES = ("logit", "logprob", "centered")

FORGET_SCALE = "weight of the forget term"
TARGETED = (
    "forget term on the UW tokens only, Preservation Loss on the GW tokens (needs annotated "
    "forget records)"
)
LAMBDA_PL = "weight of the Preservation Loss on the GW tokens"
LAMBDA_RETAIN = "weight of the retain NLL (when a retain set is given)"


def hyperparameter(default, help: str):
    return field(default=default, metadata={"help": help})


def check_hyperparameters(config) -> None:
    """What every method config obeys: finite numbers, β > 0, weights (``lambda_*``,
    ``forget_scale``) >= 0, and ``lpl_space`` one of ``LPL_SPACES``."""
    for name, value in vars(config).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
        if name == "beta" and value <= 0:
            raise ValueError(f"beta must be > 0, got {value}")
        if (name.startswith("lambda_") or name == "forget_scale") and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        if name == "lpl_space" and value not in LPL_SPACES:
            raise ValueError(f"lpl_space must be one of {LPL_SPACES}, got {value!r}")


class Checked:
    def __post_init__(self):
        check_hyperparameters(self)


@dataclass
class TifConfig(Checked):
    beta: float = hyperparameter(
        0.32, "inverse temperature β (TIF paper: 0.32 Llama-2-7B forget01/05, 0.23 forget10)"
    )
    lambda_pl: float = hyperparameter(1.0, LAMBDA_PL)
    lambda_retain: float = hyperparameter(1.0, LAMBDA_RETAIN)
    per_sample: bool = hyperparameter(
        False, "TIF: a sigmoid per sample instead of one on the batch mean (the paper's code)"
    )
    lpl_space: str = hyperparameter(
        "logit",
        "TIF: what the LPL pushes down: logit (the paper's raw logit), logprob, or centered "
        "(logit minus the mean logit)",
    )
    forget_scale: float = hyperparameter(1.0, FORGET_SCALE + " (MUSE recipe: 0.1)")


@dataclass
class GaConfig(Checked):
    forget_scale: float = hyperparameter(1.0, FORGET_SCALE)
    targeted: bool = hyperparameter(False, TARGETED)
    lambda_pl: float = hyperparameter(1.0, LAMBDA_PL)


@dataclass
class GradDiffConfig(Checked):
    lambda_retain: float = hyperparameter(1.0, LAMBDA_RETAIN)
    forget_scale: float = hyperparameter(1.0, FORGET_SCALE)
    targeted: bool = hyperparameter(False, TARGETED)
    lambda_pl: float = hyperparameter(1.0, LAMBDA_PL)


@dataclass
class NpoConfig(Checked):
    beta: float = hyperparameter(0.1, "inverse temperature β (open-unlearning default)")
    lambda_retain: float = hyperparameter(1.0, LAMBDA_RETAIN)
    forget_scale: float = hyperparameter(1.0, FORGET_SCALE)
    targeted: bool = hyperparameter(False, TARGETED)
    lambda_pl: float = hyperparameter(1.0, LAMBDA_PL)


@dataclass
class SimNpoConfig(Checked):
    """open-unlearning's SimNPO defaults: β 4.5, δ = γ = 0, forget weight 0.125 (its
    ``gamma``) against the retain NLL's 1.0 (its ``alpha``)."""

    beta: float = hyperparameter(4.5, "inverse temperature β (open-unlearning default)")
    gamma: float = hyperparameter(
        0.0, "SimNPO margin γ (paper form; open-unlearning's delta = γ / β)"
    )
    lambda_retain: float = hyperparameter(1.0, LAMBDA_RETAIN + " (open-unlearning's alpha)")
    forget_scale: float = hyperparameter(0.125, FORGET_SCALE + " (open-unlearning's gamma)")
    targeted: bool = hyperparameter(False, TARGETED)
    lambda_pl: float = hyperparameter(1.0, LAMBDA_PL)


@dataclass
class IdkDpoConfig(Checked):
    beta: float = hyperparameter(0.1, "inverse temperature β of DPO (open-unlearning default)")
    lambda_retain: float = hyperparameter(1.0, LAMBDA_RETAIN)
    forget_scale: float = hyperparameter(1.0, "weight of the DPO term")


METHOD_CONFIGS: dict[str, type] = {
    "tif": TifConfig,
    "ga": GaConfig,
    "graddiff": GradDiffConfig,
    "npo": NpoConfig,
    "simnpo": SimNpoConfig,
    "idkdpo": IdkDpoConfig,
}


def method_options() -> dict[str, tuple[type, str]]:
    """Each hyperparameter name, in first-seen order, with its type and its help: the first
    method's description and every method's default (``--beta``: "... (tif 0.32, npo 0.1, ...)")."""
    options: dict[str, tuple[type, str]] = {}
    defaults: dict[str, list[str]] = {}
    for method, cls in METHOD_CONFIGS.items():
        hints = typing.get_type_hints(cls)
        for option in fields(cls):
            options.setdefault(option.name, (hints[option.name], option.metadata["help"]))
            defaults.setdefault(option.name, []).append(f"{method} {option.default}")
    return {
        name: (kind, f"{help} (default: {', '.join(defaults[name])})")
        for name, (kind, help) in options.items()
    }


METHOD_OPTIONS = tuple(method_options())


def method_config(method, config):
    """``method``'s config from the hyperparameters set in ``config`` (an ``UnlearnConfig``;
    None: unset), refusing ones it doesn't use (``--lambda-pl`` weighs the Preservation Loss,
    so it needs a method that uses spans)."""
    values = {name: getattr(config, name, None) for name in METHOD_OPTIONS}
    given = {name: value for name, value in values.items() if value is not None}
    accepted = {f.name for f in fields(method.config_cls)}
    unused = set(given) - accepted
    try:
        hyper = method.config_cls(**{k: v for k, v in given.items() if k not in unused})
    except ValueError as err:
        raise TifError(str(err)) from err
    if "lambda_pl" in given and not method.needs_spans(hyper):
        unused.add("lambda_pl")
    if unused:
        names = ", ".join("--" + n.replace("_", "-") for n in sorted(unused))
        raise TifError(f"{names} does not apply to method '{method.name}' as configured")
    return hyper
