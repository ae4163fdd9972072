"""A trained model's card keeps its lineage and, once evaluated, its scores.

- ``base_model`` and ``license`` come from the starting model: a local folder's own card
  (``README.md`` front matter; a model fine-tuned by ``tif finetune`` has one), or the
  embedded model's known licence. A card that names them already keeps its own.
- ``tif card MODEL RESULTS.json...`` writes the summary metrics of ``tif eval qa | tofu |
  muse`` results into the card's ``model-index`` (what the hub shows) and an "Evaluation"
  section of its body.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import TifError

EMBEDDED_LICENCES = {"smollm2-135m": "apache-2.0"}
INHERITED = ("base_model", "license")
DATASETS = {"tofu": "locuslab/TOFU", "muse": "muse-bench/MUSE-News", "qa": "own-records"}
EVAL_HEADING = "## Evaluation"


def front_matter(text: str) -> dict:
    """The YAML front matter of a model card (``{}`` without one, or when it is not YAML)."""
    import yaml

    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def starting_card(model: str) -> dict:
    """``base_model`` and ``license`` of the starting model, where known locally."""
    if model in EMBEDDED_LICENCES:
        return {"license": EMBEDDED_LICENCES[model]}
    readme = Path(model).expanduser() / "README.md"
    if not readme.is_file():
        return {}
    try:
        metadata = front_matter(readme.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}
    return {key: metadata[key] for key in INHERITED if metadata.get(key)}


def with_lineage(card_text: str, model: str) -> str:
    """``card_text`` with the starting model's ``base_model`` and ``license`` where it has
    none of its own."""
    from huggingface_hub import ModelCard

    inherited = starting_card(model)
    card = ModelCard(card_text)
    missing = {k: v for k, v in inherited.items() if not getattr(card.data, k, None)}
    if not missing:
        return card_text
    for key, value in missing.items():
        setattr(card.data, key, value)
    return str(card)


def _numbers(values: dict, prefix: str = "") -> dict[str, float]:
    """The numbers of a nested summary, named by their path: ``{"leak": {"greedy": 0.1}}``
    -> ``{"leak.greedy": 0.1}``."""
    found = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found.update(_numbers(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found[name] = float(value)
    return found


def result_metrics(results: dict) -> dict[str, float]:
    """The summary metrics of a ``tif eval`` results file: TOFU and MUSE's ``summary``; for
    ``qa``, each set's own summary (``forget.rouge``, ...; not the reference's)."""
    if results.get("benchmark") in ("tofu", "muse"):
        return _numbers(results.get("summary") or {})
    if results.get("benchmark") == "qa":
        found = {}
        for name, part in results.items():
            if isinstance(part, dict) and isinstance(part.get("summary"), dict):
                found.update(_numbers(part["summary"].get("model") or {}, f"{name}."))
        return found
    raise TifError("not a tif eval qa, tofu or muse results file (no 'benchmark' key)")


def read_results(path: str) -> tuple[str, dict[str, float]]:
    """``(benchmark, metrics)`` of a results file."""
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TifError(f"could not read the results file {path}: {err}") from err
    if not isinstance(results, dict):
        raise TifError(f"{path} is not a tif eval results file")
    try:
        metrics = result_metrics(results)
    except TifError as err:
        raise TifError(f"{path}: {err}") from err
    return results["benchmark"], metrics


def evaluation_section(scores: dict[str, dict[str, float]]) -> str:
    """The card's "Evaluation" section: one table per benchmark."""
    lines = [EVAL_HEADING, "", "Written by `tif card` from `tif eval` results.", ""]
    for benchmark, metrics in scores.items():
        lines += [f"`tif eval {benchmark}`:", "", "| metric | value |", "|---|---:|"]
        lines += [f"| {name} | {value:.4f} |" for name, value in metrics.items()]
        lines.append("")
    return "\n".join(lines)


def with_results(card_text: str, scores: dict[str, dict[str, float]], name: str) -> str:
    """``card_text`` with ``scores`` (benchmark -> metrics) as ``model-index`` and as its
    "Evaluation" section (both replaced when written before)."""
    from huggingface_hub import EvalResult, ModelCard

    card = ModelCard(card_text)
    card.data.eval_results = [
        EvalResult(
            task_type="text-generation",
            dataset_type=DATASETS.get(benchmark, benchmark),
            dataset_name=f"tif eval {benchmark}",
            metric_type=metric,
            metric_value=value,
            metric_name=metric,
        )
        for benchmark, metrics in scores.items()
        for metric, value in metrics.items()
    ]
    card.data.model_name = card.data.model_name or name
    body = card.text.split(f"\n{EVAL_HEADING}\n")[0].rstrip("\n")
    card.text = f"{body}\n\n{evaluation_section(scores)}"
    return str(card)
