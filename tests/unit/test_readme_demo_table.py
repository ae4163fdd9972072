"""The README's demo leak table states what `benchmarks/results/demo_leak.json` holds: strict /
partial leak rates per way of asking, the degenerate and the copied share, per model."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_leak_rows() -> dict[str, list[str]]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Leak audit: share of"))
    header = lines[start + 1].split()
    assert header == ["model", "greedy", "best-of-8", "format", "shift", "degenerate", "copied"]
    rows = {}
    for line in lines[start + 3 :]:
        if not line.strip():
            break
        name, *cells = line.split()
        rows[name] = cells
    return rows


def test_readme_demo_leak_table_matches_demo_leak_json():
    saved = json.loads((ROOT / "benchmarks/results/demo_leak.json").read_text(encoding="utf-8"))
    rows = readme_leak_rows()
    assert list(rows) == list(saved["results"])
    for name, cells in rows.items():
        forget = saved["results"][name]["forget"]
        rates, partial = forget["leak"], forget["leak"]["partial"]
        expected = [
            f"{rates[way]:.2f}/{partial[way]:.2f}"
            for way in ("greedy", "best_of_n", "format_shift")
        ]
        expected += [f"{forget['degenerate']:.2f}", f"{forget['duplicates']:.2f}"]
        assert cells == expected, name
