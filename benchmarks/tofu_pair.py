"""The forget authors of TOFU-mini. By default TOFU's forget01 (the last two of its 200
authors, with the paper's GPT-4o spans); ``--forget-authors A,B`` picks any other authors that
TOFU has perturbed answers for (its truth ratios need them: authors 0-19 in
``retain_perturbed``, 180-199 in ``forget10_perturbed``), so that a conclusion can be checked
beyond forget01. The evaluator then reads a TOFU-layout folder whose ``forget01`` split is
those authors (every other split links to the real one). :func:`build_data` writes the data
files of a TOFU-mini protocol."""

from __future__ import annotations

import json
from pathlib import Path

from cache import cached_json, digest, write_atomically, write_records

from tif_unlearn.data.loaders import load_records
from tif_unlearn.data.records import QARecord
from tif_unlearn.data.tofu import default_tofu_dir, load_tofu_split

QA_PER_AUTHOR = 20
DEFAULT_AUTHORS = (198, 199)  # = TOFU's forget01
PERTURBED_SPLITS = ("forget10_perturbed", "retain_perturbed")
FORGET01_SPANS = Path("tofu-uw-annotations", "forget01.llm.jsonl")
FORGET05_SPANS = Path("tofu-uw-annotations", "forget05.llm.jsonl")
GPT4O_FILES = {  # GPT-4o span files released with the paper -> the authors they cover
    FORGET01_SPANS: range(198, 200),
    FORGET05_SPANS: range(190, 200),
}


def build_data(p, work: Path) -> dict[str, Path]:
    """Retain / forget / train files and the UW-annotated forget set under ``work/data`` for the
    protocol ``p`` (bench_tofu.Protocol); for other forget authors than forget01's, the
    evaluator's data folder too (``tofu_dir``)."""
    full = load_tofu_split("full")
    rows = forget_rows(full, p.forget_authors, p.retain_authors)
    questions = [r["question"] for r in rows]
    if p.on_forget01 and questions != [r["question"] for r in load_tofu_split("forget01")]:
        raise SystemExit("TOFU full.json does not end with forget01: unexpected data")
    files = {}
    if not p.on_forget01:  # first, as it checks that TOFU can evaluate these authors
        files["tofu_dir"] = eval_data_dir(p.forget_authors, rows, work)
    retain_rows = full[: p.retain_authors * QA_PER_AUTHOR]
    gpt4o = gpt4o_records(p.forget_authors, rows, p.annotations)
    sets = {"retain": retain_rows, "forget": rows, "train": retain_rows + rows}
    for name, set_rows in sets.items():
        files[name] = work / "data" / f"{name}.jsonl"
        write_records([QARecord(r["question"], r["answer"]) for r in set_rows], files[name])
    files["gpt4o"] = work / "data" / "forget.gpt4o.jsonl"
    write_records(gpt4o, files["gpt4o"])
    if "tif-learned" in p.families:
        files["learned"] = learned_file(p, rows, work)
    return files


def learned_file(p, rows: list[dict], work: Path) -> Path:
    """``work/data/forget.learned.jsonl`` (:func:`learned_annotations`), fitted again only when
    the learned identifier's defaults, its feature version or the gold file changed."""
    from dataclasses import asdict

    from tif_unlearn.identify.features import FEATURE_VERSION
    from tif_unlearn.identify.learned_model import LearnedConfig

    gold = default_tofu_dir().parent / FORGET05_SPANS
    signature = {
        "config": asdict(LearnedConfig()),
        "feature_version": FEATURE_VERSION,
        "gold": digest(gold.read_text(encoding="utf-8")),
    }
    if not p.on_forget01:
        signature["forget_authors"] = list(p.forget_authors)
    path, key = work / "data" / "forget.learned.jsonl", work / "data" / "forget.learned.key.json"

    def compute() -> dict:
        write_records(learned_annotations(p.forget_authors, rows), path)
        return {"file": path.name}

    if not path.is_file():
        key.unlink(missing_ok=True)
    cached_json(key, signature, compute)
    return path


def learned_annotations(authors: tuple[int, ...], rows: list[dict]) -> list[QARecord]:
    """The forget answers annotated by `learned` fitted on the GPT-4o spans of forget05's
    other authors (for forget01: its first 8; forget05 = the last 10 authors, forget01 = the
    last 2): held out, unlike the packaged model, which saw forget01's authors."""
    from tif_unlearn.identify import identify
    from tif_unlearn.identify.learned import fit_learned

    model = fit_learned(learned_training_records(authors))
    records = [QARecord(r["question"], r["answer"]) for r in rows]
    result = identify("learned", records, model=model, progress=False)
    if result.failures:
        raise SystemExit(f"learned failed on {len(result.failures)} answers")
    return result.annotated()


def parse_authors(text: str) -> tuple[int, ...]:
    """``"188,189"`` -> (188, 189): distinct author numbers (0-199, in full.json's order)."""
    try:
        authors = tuple(int(part) for part in text.split(","))
    except ValueError:
        message = f"--forget-authors takes author numbers like 188,189, got {text!r}"
        raise SystemExit(message) from None
    if len(set(authors)) != len(authors):
        raise SystemExit(f"--forget-authors names an author twice: {text!r}")
    return authors


def label(authors: tuple[int, ...]) -> str:
    """``authors188-189``: the suffix of this pair's result files and data folder."""
    return "authors" + "-".join(str(a) for a in authors)


def forget_rows(full: list[dict], authors: tuple[int, ...], retain_authors: int) -> list[dict]:
    """The QA rows of ``authors`` (never one of the first ``retain_authors``)."""
    n_authors = len(full) // QA_PER_AUTHOR
    for author in authors:
        if not retain_authors <= author < n_authors:
            raise SystemExit(
                f"forget author {author} must be between {retain_authors} and {n_authors - 1}: "
                f"the first {retain_authors} are the retain authors"
            )
    return [row for a in authors for row in full[a * QA_PER_AUTHOR : (a + 1) * QA_PER_AUTHOR]]


def perturbed_rows(rows: list[dict]) -> list[dict]:
    """The perturbed-answer rows of ``rows``' questions, from the TOFU splits that have them."""
    index = {r["question"]: r for split in PERTURBED_SPLITS for r in load_tofu_split(split)}
    missing = sorted({i // QA_PER_AUTHOR for i, r in enumerate(rows) if r["question"] not in index})
    if missing:
        raise SystemExit(
            f"TOFU has no perturbed answers for {len(missing)} of the forget authors (their "
            "truth ratio cannot be computed): choose among authors 0-19 and 180-199"
        )
    return [index[r["question"]] for r in rows]


def eval_data_dir(authors: tuple[int, ...], rows: list[dict], work: Path) -> Path:
    """A TOFU-layout folder whose ``forget01`` (and ``forget01_perturbed``) are ``rows``; the
    other splits are links to the real files (``holdout01`` stays the MIA holdout)."""
    source = default_tofu_dir()
    if source is None:
        raise SystemExit("the TOFU data folder is missing (set TIF_TOFU_DIR)")
    folder = work / "data" / f"tofu-{label(authors)}"
    folder.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.json"):
        link = folder / path.name
        if not path.name.startswith("forget01") and not link.exists():
            link.symlink_to(path.resolve())
    write_json_lines(rows, folder / "forget01.json", ("question", "answer"))
    write_json_lines(perturbed_rows(rows), folder / "forget01_perturbed.json")
    return folder


def write_json_lines(rows: list[dict], path: Path, keys: tuple[str, ...] | None = None) -> None:
    """TOFU's format (one object per line), atomically: tasks running side by side rewrite the
    same files."""
    text = "".join(json.dumps({k: r[k] for k in keys} if keys else r) + "\n" for r in rows)
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def gpt4o_records(
    authors: tuple[int, ...], rows: list[dict], annotations: str | None = None
) -> list[QARecord]:
    """UW-annotated records of ``rows``: from ``annotations`` (a JSON Lines file of the same
    questions in the same order), else from the paper's GPT-4o file that covers ``authors``."""
    records = load_records(annotations) if annotations else paper_spans(authors)
    if [r.question for r in records] != [r["question"] for r in rows]:
        raise SystemExit(
            f"the UW annotations ({annotations or 'GPT-4o'}) are not the forget authors' "
            f"{len(rows)} questions in order"
        )
    return records


def paper_spans(authors: tuple[int, ...]) -> list[QARecord]:
    """The GPT-4o spans of ``authors``: forget01's file for forget01 (as before), else the
    forget05 file's rows of those authors."""
    for relative, covered in GPT4O_FILES.items():
        if all(a in covered for a in authors):
            blocks = spans_by_author(relative)
            return [record for a in authors for record in blocks[a]]
    raise SystemExit(
        f"no GPT-4o spans for authors {authors} (the paper's cover 190-199): pass "
        "--annotations FILE with UW spans of their answers"
    )


def learned_training_records(authors: tuple[int, ...]) -> list[QARecord]:
    """What ``learned`` is fitted on for a run on ``authors``: the GPT-4o spans of forget05's
    authors other than them (160 answers for a pair inside forget05, all 200 otherwise)."""
    blocks = spans_by_author(FORGET05_SPANS)
    return [record for a, block in blocks.items() if a not in authors for record in block]


def spans_by_author(relative: Path) -> dict[int, list[QARecord]]:
    """The records of one of the paper's span files, by TOFU author number, in file order."""
    records = load_records(default_tofu_dir().parent / relative)
    first = GPT4O_FILES[relative].start
    return {
        first + i: records[i * QA_PER_AUTHOR : (i + 1) * QA_PER_AUTHOR]
        for i in range(len(records) // QA_PER_AUTHOR)
    }
