"""The results file of the ``tif eval`` commands: refused when ``--out`` is a folder, written
all or nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TifError


@dataclass
class ResultsFile:
    out: str = field(metadata={"help": "results .json"})


def check_results_path(out: str) -> None:
    if Path(out).is_dir():
        raise TifError(f"--out {out} is a folder; give a results .json file path")


def write_results(results: dict, out: str) -> None:
    check_results_path(out)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:  # all or nothing: an interrupted or failed write leaves the previous file as it was
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        raise TifError(f"could not write the results to {out}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
