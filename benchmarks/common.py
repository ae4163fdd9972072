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


def cached_training(kind: str, folder: Path, signature: dict, label: str, **fields) -> Path:
    """``tif finetune`` (``kind="finetune"``) or ``tif unlearn`` (``"unlearn"``) into ``folder``
    with the benchmarks' shared settings (half an epoch of warm-up, overwrite), unless cached
    (:func:`cached_step`); ``fields`` are the rest of the config."""
    from tif_unlearn.config import FinetuneConfig, UnlearnConfig
    from tif_unlearn.train import run_finetune, run_unlearn

    config_class, run = {
        "finetune": (FinetuneConfig, run_finetune),
        "unlearn": (UnlearnConfig, run_unlearn),
    }[kind]
    fields = {"dtype": "float32", **fields}  # the same precision on every machine
    config = config_class(out=str(folder), warmup_epochs=0.5, overwrite=True, **fields)
    return cached_step(folder, signature, label, lambda: run(config))


def _label_offsets(ax, points: list[tuple[float, float]]) -> list[int]:
    """Vertical label offsets (points) so that labels of nearby markers do not overlap."""
    ax.autoscale_view()
    placed, offsets = [], []
    for x, y in points:
        px, py = ax.transData.transform((x, y))
        near = sum(abs(px - qx) < 70 and abs(py - qy) < 14 for qx, qy in placed)
        offsets.append(5 - 12 * near)
        placed.append((px, py))
    return offsets


def scatter_png(
    points: dict[str, tuple[float, float]],
    *,
    baselines: dict[str, str],
    labels: tuple[str, str, str],
    log_x: bool = False,
) -> bytes:
    """A PNG scatter of named (x, y) points: ``baselines`` maps the reference models' names to
    a marker ("s" for the fine-tuned target, "*" for the retain/retrained model), TIF runs are
    red, other methods blue. ``labels`` = (x label, y label, title)."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=110)
    colors = {"s": "black", "*": "tab:green"}
    for name, (x, y) in points.items():
        marker = baselines.get(name, "o")
        color = "tab:red" if name.startswith("tif") else colors.get(marker, "tab:blue")
        ax.scatter([x], [y], s=110 if marker != "o" else 60, marker=marker, c=color)
    if log_x:
        ax.set_xscale("log")
    offsets = _label_offsets(ax, list(points.values()))
    for (name, xy), dy in zip(points.items(), offsets, strict=True):
        ax.annotate(name, xy, textcoords="offset points", xytext=(5, dy))
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(labels[2])
    ax.grid(alpha=0.3, which="both")
    return png_bytes(fig)


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
