"""Shared helpers for benchmark scripts: machine description, timing, results files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import torch

    flags = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        line = next(line for line in cpuinfo.splitlines() if line.startswith("flags"))
        wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
        flags = " ".join(f for f in line.split(":")[1].split() if f in wanted)
    except (OSError, StopIteration):
        pass
    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_flags": flags,
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def median(values):
    return statistics.median(values)


def write_results(name: str, payload: dict, folder: Path = RESULTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def log_step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def cached_step(folder: Path, signature: dict, label: str, run: Callable[[], object]) -> Path:
    """Run ``run()`` (which writes ``folder``) unless ``folder`` already holds a finished step
    made with the same ``signature`` (see :func:`tif_unlearn.demo.is_done`)."""
    from tif_unlearn.demo import is_done, mark_done

    if is_done(folder, False, signature):
        log_step(f"{label}: cached in {folder}")
        return folder
    log_step(label)
    run()
    mark_done(folder, signature)
    return folder
