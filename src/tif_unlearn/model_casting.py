"""Loading a local model in another dtype than its weights are stored in, without keeping the
stored copy: ``from_pretrained`` memory-maps the weights file, and every page read while casting
stays resident until the load ends (see :func:`load_cast`)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

SAFETENSORS_FLOAT_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "BF16": "bfloat16",
    "F16": "float16",
}


def _safetensors_files(folder: Path) -> list[Path]:
    """The weights files of a safetensors folder (sharded or not); [] when it has none."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        return [folder / name for name in sorted(set(weight_map.values()))]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def files_to_cast(folder: Path, dtype: torch.dtype, trust_remote_code: bool) -> list[Path]:
    """The safetensors files of a plain local model (a transformers causal LM, no quantization,
    no code of its own) when some of its floating-point weights are stored in another dtype
    than ``dtype``."""
    from safetensors import safe_open
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    plain = config.get("model_type") in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if (
        not plain
        or "quantization_config" in config
        or (trust_remote_code and config.get("auto_map"))
    ):
        return []

    files = _safetensors_files(folder)
    wanted = str(dtype).removeprefix("torch.")
    for file in files:
        with safe_open(file, framework="pt", device="cpu", backend="pread") as weights:
            for key in weights.keys():  # noqa: SIM118 - a safe_open handle is not iterable
                stored = SAFETENSORS_FLOAT_DTYPES.get(weights.get_slice(key).get_dtype())
                if stored not in (None, wanted):
                    return files
    return []


def load_cast(folder: Path, files: list[Path], dtype: torch.dtype, **placement):
    """The model of ``folder`` with its weights read tensor by tensor (``pread``, not a memory
    map) and cast to ``dtype`` as they arrive (and put on the device of ``placement``'s
    ``device_map``, :func:`placement`, when given). ``from_pretrained`` on the folder maps the
    weights file, and every page of it read while casting stays resident until the load ends:
    SmolLM2-135M in bfloat16 peaked at 1279 MB (its 538 MB float32 file beside the 269 MB it
    keeps) where this peaks at ~720 MB (benchmarks/results/bf16_profile.json)."""
    from safetensors import safe_open
    from transformers import AutoConfig, GenerationConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    config = AutoConfig.from_pretrained(folder)
    with contextlib.ExitStack() as stack:
        opened = [
            stack.enter_context(safe_open(f, framework="pt", device="cpu", backend="pread"))
            for f in files
        ]
        state_dict = {
            key: weights.get_slice(key)
            for weights in opened
            for key in weights.keys()  # noqa: SIM118 - a safe_open handle is not iterable
        }
        model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
        model = model_class.from_pretrained(
            None, config=config, state_dict=state_dict, dtype=dtype, **placement
        )
    model.config._name_or_path = str(folder)
    if (folder / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(folder)
    return model


def placement(device: str | torch.device | None) -> dict:
    """``from_pretrained``'s ``device_map`` for one device: transformers builds the model
    without weights (meta device) and puts each tensor on ``device`` as it reads it from the
    file, cast to the dtype asked for on the way. On a GPU the weights then pass through the
    page cache only (one copy per node, shared by every process that reads the file), never as
    a whole model in a process's own memory: loaded on the CPU and moved, every process held
    its own copy first when the weights were cast (16 GB for an 8B model stored in float32 and
    loaded in bf16, 8 times on 8 GPUs). None: no map (the CPU, transformers' default)."""
    if device is None:
        return {}
    return {"device_map": {"": str(torch.device(device))}}
