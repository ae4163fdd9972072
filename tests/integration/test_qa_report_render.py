"""`tif report` on `tif eval qa` results, rendered by a real browser (headless Chromium): the
table's best values are green and the words each answer leaked are drawn in the leak colour;
an answer that leaks nothing draws none. Skips where Chromium is absent."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_html_render import HEIGHT, WIDTH, screenshot

from tif_unlearn.report.results_report import CSS, load_results, render_report

pytestmark = pytest.mark.slow


def colour(selector: str) -> tuple[int, int, int]:
    found = re.search(re.escape(selector) + r"\s*\{[^}]*background:\s*#([0-9a-fA-F]{6})", CSS)
    assert found, f"no #rrggbb background for {selector} in the report CSS"
    value = found.group(1)
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))


def count(pixels: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.all(pixels == np.array(rgb, dtype=np.uint8), axis=-1).sum())


def qa_results(answer: str, strict: float, partial: float) -> dict:
    rates = {"n_items": 1, "greedy": strict, "partial": {"greedy": partial}}
    summary = {"rouge": 0.5, "uw_prob": 0.3, "gw_prob": 0.9, "leak": rates}
    item = {
        "prompt": "What illness does Marisol have?",
        "truth": "Marisol has type 2 diabetes and takes insulin glargine.",
        "unwanted_words": ["type 2 diabetes", "insulin glargine"],
        "model": {"generated": answer},
    }
    return {
        "benchmark": "qa",
        "forget": {"summary": {"model": summary}, "items": [item]},
    }


def write_page(tmp_path, answers: dict[str, tuple[str, float, float]]):
    paths = []
    for name, (answer, strict, partial) in answers.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(qa_results(answer, strict, partial)), encoding="utf-8")
        paths.append(str(path))
    page, _ = render_report(load_results(paths))
    # the scatter, once decoded (a race with the screenshot), can push the answers below the
    # window: hide it (as the demo's browser test does)
    out = tmp_path / "report.html"
    out.write_text(page.replace("<img ", "<img hidden "), encoding="utf-8")
    return out


def test_leaked_words_are_drawn_in_the_leak_colour(tmp_path):
    leaky = "Marisol's diabetes needs insulin insulin every evening, insulin and diabetes."
    page = write_page(tmp_path, {"tif": (leaky, 0.0, 1.0), "npo": ("Dr. . . . . .", 0.0, 0.0)})
    pixels = screenshot(page, tmp_path / "qa.png", tmp_path / "profile")
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, "blank or nearly blank page"
    assert count(pixels, colour(".answer mark")) > 300, "the leaked words are not drawn"
    assert count(pixels, colour("td.best")) > 200, "the best values are not drawn green"


def test_answers_without_leaks_draw_no_leak_colour(tmp_path):
    page = write_page(tmp_path, {"npo": ("Dr. . . . . .", 0.0, 0.0), "ga": ("VVVV", 0.0, 0.0)})
    pixels = screenshot(page, tmp_path / "clean.png", tmp_path / "profile")
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, "blank or nearly blank page"
    assert count(pixels, colour(".answer mark")) == 0
