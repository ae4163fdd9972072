"""Save a model folder atomically: safetensors weights, tokenizer and JSON / text side files
are written to a temporary sibling folder which then replaces the output folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import TifError


def save_model(
    model,
    tokenizer,
    out: Path | str,
    extra_json: dict | None = None,
    state_dict=None,
    extra_text: dict[str, str] | None = None,
) -> None:
    """Save as safetensors + tokenizer (+ JSON side files), atomically.

    ``state_dict`` replaces the model's own (the weights gathered from DeepSpeed ZeRO-3 shards).
    Everything is written to a temporary sibling folder which then replaces ``out``, so a crash
    never leaves a half-written model there.
    """
    out = Path(out)
    existed = out.exists()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as err:
        raise TifError(f"could not save the model to {out}: {err}") from err
    try:
        weights = {} if state_dict is None else {"state_dict": state_dict}
        model.save_pretrained(tmp, safe_serialization=True, **weights)
        tokenizer.save_pretrained(tmp)
        for name, payload in (extra_json or {}).items():
            (tmp / name).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        for name, text in (extra_text or {}).items():  # e.g. the model card, README.md
            (tmp / name).write_text(text, encoding="utf-8")
        _swap_in(tmp, out)
    except OSError as err:  # a full disk (ENOSPC), a quota, a read-only folder
        kept = "the previous folder is unchanged" if existed else "nothing was written"
        raise TifError(f"could not save the model to {out}: {err} ({kept})") from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp``; if the second rename fails, put the old ``out`` back."""
    if not out.exists():
        tmp.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
