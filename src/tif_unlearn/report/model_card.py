"""The model card (``README.md`` in the Hugging Face format) written beside every trained model.

Built from the run record (``tif_run.json``): YAML front matter that the hub reads
(``base_model``, ``library_name``, ``tags``, ``datasets``, and ``model-index`` when the run
was evaluated during training) and a body that says what was done, with which data and command, and what
unlearning does and does not guarantee.
"""

from __future__ import annotations

import re
from pathlib import Path

# Our model and data names -> their hub ids.
HUB_MODELS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}
HUB_DATASETS = {"tofu:": "locuslab/TOFU"}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

GUARANTEES = (
    "Unlearning lowers how likely the model is to produce the forgotten information; it is "
    "not a proof that the information is gone. Paraphrased questions, other prompts, sampling "
    "or fine-tuning may still recover some of it, and the model may still hold facts that "
    "were not in the forget set. Check with `tif eval qa` (leak audit) or `tif eval tofu` "
    "before relying on it, and keep the original model away from users who must not see "
    "the forgotten data."
)


def hub_model_id(model: str) -> str | None:
    """The hub id of the starting model, when it has one (local folders have none)."""
    if model in HUB_MODELS:
        return HUB_MODELS[model]
    return model if HUB_ID.match(model) and not Path(model).exists() else None


def hub_datasets(sources: list[str | None]) -> list[str]:
    found = []
    for source in filter(None, sources):
        for prefix, dataset in HUB_DATASETS.items():
            if source.startswith(prefix):
                found.append(dataset)
        if source.startswith("hf://"):
            found.append("/".join(re.split("[@#]", source[5:])[0].split("/")[:2]))
    return sorted(set(found))


def card_metadata(record: dict) -> dict:
    config = record["config"]
    method = record.get("method")
    tags = ["tif-unlearn", "unlearning" if method else "fine-tuned"]
    tags += [method] if method else []
    tags += ["targeted-unlearning"] if record.get("tokens", {}).get("uw_tokens") else []
    sources = [d.get("source") for d in data_entries(record).values()]
    metadata = {"library_name": "transformers", "tags": tags}
    base = hub_model_id(config["model"])
    if base:
        metadata["base_model"] = base
    datasets = hub_datasets(sources)
    if datasets:
        metadata["datasets"] = datasets
    return metadata


def data_entries(record: dict) -> dict[str, dict]:
    data = record.get("data", {})
    return data if "sha256" not in data else {"data": data}


def eval_results(record: dict) -> list:
    """The last evaluation during training as hub ``EvalResult`` entries (``model-index``)."""
    from huggingface_hub import EvalResult

    if not record.get("eval"):
        return []
    last = record["eval"][-1]
    split = record["config"].get("eval_forget_split", "forget01")
    return [
        EvalResult(
            task_type="text-generation",
            dataset_type="locuslab/TOFU",
            dataset_name=f"TOFU {split}",
            metric_type=name,
            metric_value=value,
            metric_name=name.replace("_", " "),
        )
        for name, value in last.items()
        if name != "step" and isinstance(value, int | float)
    ]


def card_body(record: dict) -> str:
    config, method = record["config"], record.get("method")
    what = f"unlearned with `{method}`" if method else "fine-tuned"
    lines = [
        f"# {Path(config['out']).name or 'model'}",
        "",
        f"`{config['model']}` {what} by [tif-unlearn](https://pypi.org/project/tif-unlearn/).",
        "",
        "## Run",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    for name, value in run_settings(record).items():
        lines.append(f"| {name} | `{value}` |")
    lines += ["", "## Data", "", "| input | source | SHA-256 |", "|---|---|---|"]
    for name, entry in data_entries(record).items():
        if entry.get("source"):
            lines.append(f"| {name} | `{entry['source']}` | `{entry.get('sha256') or '-'}` |")
    lines += ["", "## Command", "", "```bash", command(record), "```"]
    lines += ["", "## What unlearning does and does not guarantee", "", GUARANTEES, ""]
    return "\n".join(lines)


def run_settings(record: dict) -> dict:
    config = record["config"]
    settings = {k: config[k] for k in ("epochs", "lr", "batch_size", "grad_accum", "seed")}
    if record.get("method"):
        settings["identifier"] = config.get("identifier") or "spans given in the forget file"
        settings.update(record.get("method_config", {}))
    settings["train seconds"] = record.get("train_seconds")
    return settings


def command(record: dict) -> str:
    """The ``tif`` command that reproduces the run (options that differ from None/False)."""
    flags = []
    for key, value in record["config"].items():
        if value is None or value is False or value == "":
            continue
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag} {value}")
    return f"tif {record['command']} " + " ".join(flags)


def model_card(record: dict) -> str:
    """The full ``README.md``: YAML front matter (with ``model-index`` when the run was
    evaluated) and body."""
    from huggingface_hub import ModelCardData

    results = eval_results(record)
    name = Path(record["config"]["out"]).name or "model"
    extra = {"eval_results": results, "model_name": name} if results else {}
    data = ModelCardData(**card_metadata(record), **extra)
    return f"---\n{data.to_yaml()}\n---\n\n{card_body(record)}"
