"""An efficacy benchmark's report (engine.py): each family's best point under the utility floor
(mean of its two seeds), the Pareto frontier, the verdict, a Markdown table and the
trajectories' plot, as results/<stem>.{json,md,png} (the work folder's for a reduced protocol)."""

from __future__ import annotations

from pathlib import Path

from bench_spec import FLOOR, Spec, runs_dir
from cache import parse_run, read_json
from common import RESULTS, machine, png_bytes, write_results
from selection import (
    family_summary,
    finished_runs,
    is_targeted,
    pareto_frontier,
    verdict,
    verdict_line,
)


def write_report(spec: Spec, p, work: Path, seconds: float) -> dict:
    runs = finished_runs(runs_dir(spec, p, work), p.families, p.recipe())
    reference = spec.reference_data(p, work, wait_minutes=0)
    base = {
        name: spec.headline(read_json(work / "eval" / f"{name}.json")["result"], reference)
        for name in (spec.reference, "finetuned")
    }
    payload = {
        "machine": machine(),
        "protocol": p.recipe(),
        spec.labels.floor_key: FLOOR * base["finetuned"][spec.utility],
        **summarize(spec, p.families, runs, base["finetuned"]),
        "models": base,
        "runs": runs,
        "wall_minutes_this_call": round(seconds / 60, 1),
    }
    if spec.extra_payload:
        payload.update(spec.extra_payload(p))
    kept = spec.results_stem(p)
    folder, name = (RESULTS, kept) if kept else (work, f"{spec.name}_quick")
    write_results(f"{name}.json", payload, folder)
    (folder / f"{name}.md").write_text(markdown_table(spec, payload) + "\n")
    (folder / f"{name}.png").write_bytes(trajectories_png(spec, payload))
    return payload


def summarize(spec: Spec, families, runs: dict, finetuned: dict) -> dict:
    """The summary, Pareto frontier and verdict of finished ``runs`` (a seed without a point
    counts as the ``finetuned`` model)."""
    summary = family_summary(families, runs, spec.keys, spec.higher_is_better, finetuned)
    x, y = spec.keys
    points = {f: (s[x], s[y]) for f, s in summary.items() if s}
    frontier = pareto_frontier(points, x_higher=spec.higher_is_better)
    return {
        "best_under_utility_floor": summary,
        "pareto_frontier": frontier,
        "verdict": verdict(summary, frontier, x, spec.higher_is_better),
    }


def markdown_table(spec: Spec, payload: dict) -> str:
    """One row per family (and per base model): its score and utility, best setting and epoch,
    the benchmark's extra column (TOFU: the ROUGE parts that decide Model Utility) and the
    seeds' points."""
    labels, (x, y) = spec.labels, spec.keys
    extra = labels.extra_column
    fx, fy = labels.formats
    columns = ["family", f"{labels.score} (mean of 2 seeds)", labels.utility, "best setting"]
    columns += ["epoch", *([extra[0]] if extra else []), labels.seeds]
    lines = [
        verdict_line(payload["verdict"]),
        "",
        f"Utility floor: {labels.floor} ≥ {payload[labels.floor_key]:.3f} (0.95 × fine-tuned). "
        f"Pareto frontier: {', '.join(payload['pareto_frontier'])}.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    empty = " |" * (len(columns) - 4)
    for family, s in payload["best_under_utility_floor"].items():
        if s is None:
            lines.append(f"| {family} | – | – | no checkpoint kept the floor |{empty}")
            continue
        seeds = "; ".join(
            f"{format(point[x], fx)} / {format(point[y], fy)}"
            + (" (none above the floor: the fine-tuned model)" if point["epoch"] == 0 else "")
            for point in s["seeds"]
        )
        row = f"| {family} | {format(s[x], fx)} | {format(s[y], fy)} | {s['setting']} |"
        row += f" {s['epoch']} |"
        if extra:
            row += f" {extra[1](payload['runs'][s['run']]['chosen'])} |"
        lines.append(f"{row} {seeds} |")
    score, utility = spec.score, spec.utility
    for name, m in payload["models"].items():
        row = f"| ({name}) | {format(m[score], fx)} | {format(m[utility], fy)} | | |"
        lines.append(row + (f" {extra[1](m)} |" if extra else "") + " |")
    return "\n".join(lines)


MARKERS = "os^Dv<>PX*hpd"


def family_styles(families) -> dict[str, tuple[int, str]]:
    """A tab20 colour index and a marker shape per family, no two families alike: the ten
    strong tab20 colours first, then their light twins."""
    return {
        family: ((2 * i) % 20 + (2 * i) // 20 % 2, MARKERS[i % len(MARKERS)])
        for i, family in enumerate(families)
    }


def trajectories_png(spec: Spec, payload: dict) -> bytes:
    """Left: every run's per-epoch trajectory (the probe's ``spec.plot_axes``), solid for the
    TIF family, dashed for the baselines, with each family's summary point as a large marker (a
    colour and a shape per family) and the utility floor of those points as a dotted line.
    Right: the mean UW- against GW-token probability of the forget set along the same epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key, y_key, log_x = spec.plot_axes
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5), dpi=100)
    families = list(payload["best_under_utility_floor"])
    styles = family_styles(families)
    colors = {f: plt.cm.tab20(index) for f, (index, _) in styles.items()}
    for name, run in payload["runs"].items():
        family, steps = parse_run(name)[0], run["trajectory"]
        style = {"ls": "-" if is_targeted(family) else "--", "color": colors[family]}
        xs = [max(t[x_key], 1e-12) if log_x else t[x_key] for t in steps]
        left.plot(xs, [t[y_key] for t in steps], marker=".", lw=1, alpha=0.6, **style)
        uw, gw = [t["uw_prob"] for t in steps], [t["gw_prob"] for t in steps]
        right.plot(uw, gw, marker=".", lw=1, alpha=0.6, **style)
    for family, point in payload["best_under_utility_floor"].items():
        if point:
            x, y = (point[k] for k in spec.keys)
            x = max(x, 1e-12) if log_x else x
            shape = styles[family][1]
            left.scatter([x], [y], s=90, color=colors[family], marker=shape, edgecolor="black",
                         label=family)  # fmt: skip
    left.axhline(
        payload[spec.labels.floor_key], color="gray", ls=":", lw=1, label="utility floor (markers)"
    )
    if log_x:
        left.set_xscale("log")
    left.set_xlabel(spec.labels.x_axis)
    left.set_ylabel(spec.labels.y_axis)
    left.set_title("Pareto frontier: " + ", ".join(payload["pareto_frontier"]), fontsize=9)
    left.legend(fontsize=7)
    right.set_xlabel("mean UW-token probability (forget set)")
    right.set_ylabel("mean GW-token probability (forget set)")
    right.set_title("What each method lowers, epoch by epoch", fontsize=9)
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
    return png_bytes(fig)
