"""MUSE-News-mini's data (bench_muse.py): forget excerpts cut from MUSE-News' VerbMem passages,
retain texts, same-length holdout texts, their UW spans from a local identifier, and a
MUSE-layout folder that ``evaluate_muse`` reads."""

from __future__ import annotations

import json
from pathlib import Path

from cache import write_atomically, write_records

from tif_unlearn.data.records import TextRecord

MODEL = "smollm2-135m"
ICL_FILES = ("knowmem/forget_qa_icl.json", "knowmem/retain_qa_icl.json")


def muse_dir() -> Path:
    from tif_unlearn.evaluate.muse import default_muse_dir

    folder = default_muse_dir("news")
    if folder is None:
        raise SystemExit("MUSE-News not found (expected ../shared/data/muse-news)")
    return folder


def token_slice(tokenizer, text: str, start: int | None, stop: int | None) -> str:
    """The characters of ``text`` covered by its tokens ``[start:stop]`` (Python slicing)."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"][start:stop]
    return text[offsets[0][0] : offsets[-1][1]]


def excerpts(p, tokenizer, source: Path) -> dict[str, list]:
    """The forget excerpts (VerbMem prompt/gt), retain texts and same-length holdout texts."""
    verbmem = json.loads((source / "verbmem/forget.json").read_text())[: p.forget_passages]
    pairs = [
        {
            "prompt": token_slice(tokenizer, row["prompt"], -p.prompt_tokens, None),
            "gt": token_slice(tokenizer, row["gt"], 0, p.gt_tokens),
        }
        for row in verbmem
    ]
    length = p.prompt_tokens + p.gt_tokens
    holdout = json.loads((source / "privleak/holdout.json").read_text())
    retain = json.loads((source / "privleak/retain.json").read_text())
    return {
        "verbmem": pairs,
        "forget": [x["prompt"] + x["gt"] for x in pairs],
        "holdout": [  # from the middle of each article, like the forget excerpts
            token_slice(tokenizer, text, 256, 256 + length) for text in holdout[: p.forget_passages]
        ],
        "retain": [
            token_slice(tokenizer, text, 0, p.retain_tokens) for text in retain[: p.retain_texts]
        ],
    }


def write_muse_folder(p, parts: dict, source: Path, folder: Path) -> None:
    """A MUSE-layout folder for ``evaluate_muse``: our excerpts, the first KnowMem items."""
    files = {
        "verbmem/forget.json": parts["verbmem"],
        "privleak/forget.json": parts["forget"],
        "privleak/holdout.json": parts["holdout"],
    }
    for split in ("forget_qa", "retain_qa"):
        rows = json.loads((source / f"knowmem/{split}.json").read_text())
        files[f"knowmem/{split}.json"] = rows[: p.knowmem_items]
    texts = {relative: json.dumps(rows, ensure_ascii=False) for relative, rows in files.items()}
    texts.update({relative: (source / relative).read_text() for relative in ICL_FILES})
    for relative, text in texts.items():  # atomically: the other worker may be reading them
        write_atomically(folder / relative, lambda tmp, text=text: tmp.write_text(text))


def build_data(p, work: Path) -> dict[str, Path]:
    """The corpora under ``work/data``, the forget excerpts annotated by the local identifier,
    and the evaluation folder ``work/data/muse``."""
    from tif_unlearn.evaluate.muse import MuseEvalOptions, check_muse_data
    from tif_unlearn.models import load_tokenizer

    source, data = muse_dir(), work / "data"
    tokenizer = load_tokenizer(MODEL)
    parts = excerpts(p, tokenizer, source)
    longest = max(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in parts["forget"])
    if longest > p.window_length:
        raise SystemExit(f"a forget excerpt has {longest} tokens > the window length: raise it")
    forget = [TextRecord(t) for t in parts["forget"]]
    retain = [TextRecord(t) for t in parts["retain"]]
    files = {name: data / f"{name}.jsonl" for name in ("forget", "retain", "train", "local")}
    write_records(forget, files["forget"])
    write_records(retain, files["retain"])
    write_records(forget + retain, files["train"])
    write_records(local_annotations(p, forget), files["local"])
    files["muse"] = data / "muse"
    write_muse_folder(p, parts, source, files["muse"])
    check_muse_data(MuseEvalOptions(data_dir=str(files["muse"])))
    return files


def local_annotations(p, forget: list[TextRecord]) -> list[TextRecord]:
    from tif_unlearn.identify import identify

    result = identify(p.local_identifier, forget)
    if result.failures:
        raise SystemExit(f"{p.local_identifier} failed on {len(result.failures)} excerpts")
    return result.annotated()
