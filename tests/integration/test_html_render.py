"""The identify HTML page rendered by a real browser (headless Chromium): the page is not blank
and the unwanted words are drawn with the <mark> highlight colour; without spans, no highlight."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tif_unlearn.data.records import QARecord
from tif_unlearn.report import spans_html as html_module
from tif_unlearn.report.spans_html import render_html

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1200, 900
RECORDS = [
    QARecord("Where was Basil born?", "Basil was born in Kuwait City.", unwanted_spans=((18, 29),)),
    QARecord(
        "What does Nikolai write?",
        "Nikolai writes books about Kazakhstan.",
        unwanted_spans=((0, 7), (27, 37)),
    ),
    QARecord(
        "What did he type?",
        "He typed <script>document.body.innerHTML=''</script> into The Silent Harbor.",
        unwanted_spans=((58, 75),),  # "The Silent Harbor"
    ),
]
assert RECORDS[2].answer[58:75] == "The Silent Harbor"


def mark_colour() -> tuple[int, int, int]:
    """The background colour of <mark> in the page's inline CSS (#rrggbb)."""
    found = re.search(r"mark\s*\{[^}]*background:\s*#([0-9a-fA-F]{6})", html_module._CSS)
    assert found, "no #rrggbb background for mark in identify/html.py"
    value = found.group(1)
    return tuple(int(value[i : i + 2], 16) for i in (0, 2, 4))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> np.ndarray:
    """Pixels (H, W, channels) of an 8-bit, non-interlaced RGB or RGBA PNG (no PIL needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:  # None
            row = line.copy()
        elif kind == 1:  # Sub: running sum per channel
            row = (np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.int64) % 256).astype(
                np.uint8
            )
            row = row.ravel()
        elif kind == 2:  # Up
            row = line + previous
        elif kind in (3, 4):  # Average, Paeth: byte by byte
            values, up = bytearray(line.tobytes()), previous.tobytes()
            for i in range(stride):
                left = values[i - bpp] if i >= bpp else 0
                upper_left = up[i - bpp] if i >= bpp else 0
                add = (left + up[i]) // 2 if kind == 3 else _paeth(left, up[i], upper_left)
                values[i] = (values[i] + add) % 256
            row = np.frombuffer(bytes(values), dtype=np.uint8)
        else:
            raise AssertionError(f"bad PNG filter type {kind} in row {y}")
        out[y], previous = row, row
    return out.reshape(height, width, bpp)


def screenshot(page: Path, png: Path, profile: Path) -> np.ndarray:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={WIDTH},{HEIGHT}",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert png.is_file() and png.stat().st_size > 0, f"no screenshot: {done.stderr[-2000:]}"
    try:
        from PIL import Image
    except ImportError:
        pixels = decode_png(png.read_bytes())
    else:
        with Image.open(png) as image:
            pixels = np.asarray(image.convert("RGB"))
    return pixels[..., :3]


def _count_colour(pixels: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(pixels == np.array(colour, dtype=np.uint8), axis=-1).sum())


def test_rendered_page_shows_highlighted_unwanted_words(tmp_path):
    page = tmp_path / "identify.html"
    page.write_text(render_html({"annotations": RECORDS}), encoding="utf-8")
    png = tmp_path / "identify.png"
    pixels = screenshot(page, png, tmp_path / "profile")
    print(f"screenshot: {png}")
    assert pixels.shape == (HEIGHT, WIDTH, 3)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 2, "blank screenshot"
    highlighted = _count_colour(pixels, mark_colour())
    assert highlighted > 500, f"only {highlighted} pixels of the <mark> colour {mark_colour()}"
    # The highlight sits on text rows of the page, not over the whole page.
    rows = np.flatnonzero(np.all(pixels == np.array(mark_colour(), np.uint8), axis=-1).any(axis=1))
    assert rows.size < HEIGHT // 4


def test_rendered_page_without_spans_has_no_highlight(tmp_path):
    plain = [QARecord(r.question, r.answer, unwanted_spans=()) for r in RECORDS]
    page = tmp_path / "plain.html"
    page.write_text(render_html({"annotations": plain}), encoding="utf-8")
    pixels = screenshot(page, tmp_path / "plain.png", tmp_path / "profile")
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 2, "blank screenshot"
    assert _count_colour(pixels, mark_colour()) == 0


def test_png_decoder_matches_a_known_image(tmp_path):
    """The fallback decoder itself, on a PNG built here with every filter type."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    stride, bpp = 12, 3
    previous = np.zeros(stride, dtype=np.int64)
    rows = b""
    for y in range(5):
        kind, line = y, image[y].ravel().astype(np.int64)
        left = np.concatenate([np.zeros(bpp, np.int64), line[:-bpp]])
        upper_left = np.concatenate([np.zeros(bpp, np.int64), previous[:-bpp]])
        if kind == 0:
            predictor = np.zeros(stride, np.int64)
        elif kind == 1:
            predictor = left
        elif kind == 2:
            predictor = previous
        elif kind == 3:
            predictor = (left + previous) // 2
        else:
            predictor = np.array(
                [_paeth(a, b, c) for a, b, c in zip(left, previous, upper_left, strict=True)]
            )
        rows += bytes([kind]) + bytes(((line - predictor) % 256).astype(np.uint8))
        previous = line

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 5, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    np.testing.assert_array_equal(decode_png(png), image)


def test_rendered_results_report_marks_best_values_and_draws_the_scatter(tmp_path):
    from tif_unlearn.report.results_report import CSS, write_report

    runs = {
        "tif": {"forget_quality": 0.4, "model_utility": 0.35, "forget_rouge": 0.3},
        "npo": {"forget_quality": 0.01, "model_utility": 0.40, "forget_rouge": 0.05},
    }
    paths = []
    for name, summary in runs.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"benchmark": "tofu", "summary": summary}), encoding="utf-8")
        paths.append(str(path))
    page = write_report(paths, str(tmp_path / "report.html"))[0]
    pixels = screenshot(page, tmp_path / "shot.png", tmp_path / "profile")
    green = re.search(r"td\.best\s*\{[^}]*background:\s*#([0-9a-fA-F]{6})", CSS).group(1)
    best = tuple(int(green[i : i + 2], 16) for i in (0, 2, 4))
    assert _count_colour(pixels, best) > 200  # the three best cells are drawn green
    plot_rows = pixels[HEIGHT // 3 :]
    assert (plot_rows < 200).any(axis=-1).sum() > 2000  # the scatter's axes, labels and points
