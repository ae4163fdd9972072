"""Plots (matplotlib, headless Agg backend), returned as PNG bytes."""

from __future__ import annotations

import io


def forget_retain_scatter(
    points: dict[str, tuple[float, float]], *, xlabel: str, ylabel: str, title: str
) -> bytes:
    """Scatter of (forget score, retain score) per model; returns PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for name, (x, y) in points.items():
        ax.scatter([x], [y], s=80)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
