"""A fitted ``learned`` model and how to fit one: hyperparameters, weights, JSON file.

The model is a logistic regression: one weight per sparse feature string
(:mod:`~tif_unlearn.identify.features`), a bias, and, when it was fitted with a language model
(``lm``), one weight per dimension of that LM's hidden states at ``lm_layers``
(:mod:`~tif_unlearn.identify.lm_features`; the standardisation used in fitting is folded into
these weights and the bias). It is saved as plain JSON (no pickle); a model that needs an LM
names it, and loading the LM is left to the identifier.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import TifError
from .features import FEATURE_VERSION
from .lm_features import DEFAULT_LM, with_next
from .ner import DEFAULT_SPACY_MODEL

DEFAULT_MODEL_RESOURCE = "learned_forget05.json"


@dataclass(frozen=True)
class LearnedConfig:
    """How to fit a ``learned`` model. The defaults are the hyperparameters that
    cross-validation by author on TOFU forget05 chose (``benchmarks/learned_cv.py``)."""

    l2: float = field(default=1.0, metadata={"help": "L2 penalty on the weights"})
    threshold: float = field(default=0.4, metadata={"help": "UW when probability >= this"})
    min_count: int = field(default=2, metadata={"help": "drop features seen fewer times"})
    lexical: bool = field(default=True, metadata={"help": "lemmas are features"})
    max_iter: int = field(default=500, metadata={"help": "L-BFGS iterations"})
    spacy_model: str = DEFAULT_SPACY_MODEL
    lm: str | None = field(
        default=DEFAULT_LM, metadata={"help": "LM whose hidden states are features (None: none)"}
    )
    lm_layers: tuple[int, ...] = field(
        default=(18,), metadata={"help": "decoder layers (1-based) whose outputs are features"}
    )
    lm_scale: float = field(
        default=0.1, metadata={"help": "scale of the standardised hidden states (L2 on them)"}
    )
    lm_next: bool = field(
        default=True,
        metadata={"help": "also the next token's states (a causal LM's own has no right context)"},
    )

    def __post_init__(self) -> None:
        if self.l2 < 0 or not 0 < self.threshold < 1 or self.min_count < 1 or self.max_iter < 1:
            raise TifError(f"invalid LearnedConfig: {self}")
        if self.lm and (not self.lm_layers or min(self.lm_layers) < 1 or self.lm_scale <= 0):
            raise TifError(f"invalid LearnedConfig: {self}")


@dataclass
class LearnedModel:
    """A fitted classifier: one weight per feature string, optional weights on LM hidden
    states (``lm``, ``lm_layers``, ``lm_weights``; with ``lm_next`` on each token's states
    followed by the next token's), a bias and a threshold."""

    weights: dict[str, float]
    bias: float
    threshold: float = 0.4
    lexical: bool = True
    spacy_model: str = DEFAULT_SPACY_MODEL
    trained_on: dict = field(default_factory=dict)
    feature_version: int = FEATURE_VERSION
    lm: str | None = None
    lm_layers: list[int] = field(default_factory=list)
    lm_weights: list[float] = field(default_factory=list)
    lm_next: bool = False

    def probabilities(self, features: list[list[str]], dense: np.ndarray | None = None):
        """UW probability of each token given its feature strings and, for a model with an
        LM, its pooled hidden states ``dense`` (n_tokens, len(lm_weights))."""
        w = self.weights
        logits = np.array([self.bias + sum(w.get(f, 0.0) for f in feats) for feats in features])
        if self.lm and len(features):
            inputs = with_next(dense) if self.lm_next and dense is not None else dense
            if inputs is None or inputs.shape != (len(features), len(self.lm_weights)):
                raise TifError(f"this learned model needs {self.lm} hidden states per token")
            logits = logits + inputs.astype(np.float64) @ np.asarray(self.lm_weights)
        return 1.0 / (1.0 + np.exp(-logits))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = dataclasses.asdict(self)
        payload["weights"] = {k: round(v, 5) for k, v in sorted(self.weights.items())}
        payload["lm_weights"] = [float(f"{v:.6g}") for v in self.lm_weights]
        path.write_text(json.dumps(payload, indent=0) + "\n", encoding="utf-8")
        return path


def load_learned_model(path: str | Path | None = None) -> LearnedModel:
    """Read a model saved by :meth:`LearnedModel.save`; None reads the packaged default."""
    try:
        if path is None:
            packaged = resources.files("tif_unlearn").joinpath(
                f"resources/{DEFAULT_MODEL_RESOURCE}"
            )
            payload = json.loads(packaged.read_text(encoding="utf-8"))
        else:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        model = LearnedModel(**payload)
    except (OSError, ValueError, TypeError) as exc:
        where = path or DEFAULT_MODEL_RESOURCE
        raise TifError(f"could not read the learned model {where}: {exc}") from exc
    if model.feature_version != FEATURE_VERSION:
        raise TifError(
            f"{path}: made for feature version {model.feature_version}, this is {FEATURE_VERSION}"
        )
    if model.lm and not (model.lm_layers and model.lm_weights):
        raise TifError(f"could not read the learned model {path}: lm without layers or weights")
    return model
