"""The README is a short front door and every page it leads to is there.

- README.md has at most 250 lines and opens with the `make demo` / `make test` pair;
- every relative link in README.md and docs/*.md points to a file of the repository, and an
  anchor (``page.md#section``) to a heading of that page (GitHub's heading ids);
- every docs/*.md page is linked from README.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 250
OPENING_COMMANDS = [
    "make demo   # installs into .venv, then runs `tif demo` on the embedded SmolLM2-135M model",
    "make test   # installs into .venv, then runs ruff and the whole test suite",
]

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def code_blocks(text: str) -> list[list[str]]:
    blocks, current = [], None
    for line in text.splitlines():
        if FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def slug(heading: str) -> str:
    """GitHub's id for a heading: link text kept, markup and punctuation dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen = set(), {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code."""
    out = []
    lines, fenced = path.read_text(encoding="utf-8").splitlines(), False
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        definition = LINK_DEFINITION.match(line)
        if definition:
            out.append((number, definition.group(1)))
            continue
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            out.append((number, match.group(1)))
    return out


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        where = f"{path.relative_to(ROOT)}:{number}: ({target})"
        if SCHEME.match(target) or target.startswith("//"):
            continue  # http(s), mailto: not checked offline
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not dest.is_relative_to(ROOT):
            problems.append(f"{where} leaves the repository")
        elif not dest.exists():
            problems.append(f"{where} no such file")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
            problems.append(f"{where} no heading #{anchor} in {dest.relative_to(ROOT)}")
    return problems


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")  # as `wc -l README.md` counts
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines (at most {MAX_README_LINES})"


def test_readme_opens_with_make_demo_and_make_test():
    first = code_blocks(README.read_text(encoding="utf-8"))[0]
    assert first == OPENING_COMMANDS


def test_every_relative_link_resolves():
    problems = [problem for page in pages() for problem in broken_links(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_docs_page_is_linked_from_the_readme():
    assert sorted(DOCS.glob("*.md")), "no docs pages"
    linked = {
        (README.parent / unquote(target.partition("#")[0])).resolve()
        for _, target in links(README)
        if not SCHEME.match(target) and target.partition("#")[0]
    }
    missing = [p.relative_to(ROOT) for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"docs pages not linked from README.md: {missing}"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("`tif eval qa`: did it forget *your* records?", "tif-eval-qa-did-it-forget-your-records"),
        (
            "Checkpoints, resuming and divergence (`tif unlearn` and `tif finetune`)",
            "checkpoints-resuming-and-divergence-tif-unlearn-and-tif-finetune",
        ),
        ("Text corpora and windows", "text-corpora-and-windows"),
        ("See [Scaling](docs/scaling.md) now", "see-scaling-now"),
    ],
)
def test_heading_ids_follow_github(heading, expected):
    assert slug(heading) == expected


def test_the_checker_finds_a_broken_link_and_a_broken_anchor(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Two words\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#two-words) [gone](docs/b.md) [bad anchor](docs/a.md#three)\n"
        "`[in code](docs/c.md)` [out](../x.md) [web](https://example.org)\n"
        "```\n[in a block](docs/d.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 3, problems
    assert "(docs/b.md) no such file" in problems[0]
    assert "no heading #three" in problems[1]
    assert "leaves the repository" in problems[2]
