"""Plots (matplotlib, headless Agg backend), returned as PNG bytes."""

from __future__ import annotations

import io


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(6, 4.5), dpi=100)


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def results_scatter(
    points: dict[str, tuple[float, float]], *, xlabel: str, ylabel: str, title: str, log_x: bool
) -> bytes:
    """Scatter of (forgetting, utility) per results file, labelled; ``log_x`` for p-values
    (Forget Quality spans orders of magnitude). Returns PNG bytes."""
    plt, fig, ax = _figure()
    for name, (x, y) in points.items():
        x = max(x, 1e-300) if log_x else x  # a p-value of 0 still has a place on a log axis
        ax.scatter([x], [y], s=80)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6))
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _png(plt, fig)


def forget_retain_scatter(
    points: dict[str, tuple[float, float]], *, xlabel: str, ylabel: str, title: str
) -> bytes:
    """Scatter of (forget score, retain score) per model on [0, 1] axes; returns PNG bytes."""
    plt, fig, ax = _figure()
    for name, (x, y) in points.items():
        ax.scatter([x], [y], s=80)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    return _png(plt, fig)
