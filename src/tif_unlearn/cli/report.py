"""`tif report`: one HTML page (and a PNG) and a table in the terminal comparing `tif eval tofu`,
`tif eval muse` or `tif eval qa` results (``report/results_report.py``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from .options import Command, Flags


@dataclass
class ReportArgs:
    results: tuple[str, ...] = field(
        metadata={
            "help": "results .json files to compare: all of tif eval tofu, all of tif eval "
            "muse, or all of tif eval qa",
            "positional": True,
        }
    )
    out: str = field(
        default="report.html",
        metadata={"help": "the HTML page to write; the scatter goes beside it as .png"},
    )


REPORT_FLAGS = Flags(ReportArgs, show_defaults=True)


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.precision import warn_if_mixed_precision
    from ..report.results_report import load_results, text_table, write_loaded

    report = REPORT_FLAGS.build(args)
    loaded = load_results(list(report.results))
    warn_if_mixed_precision(loaded)
    print(text_table(loaded))
    for path in write_loaded(loaded, report.out):
        print(f"written: {path}")
    return 0


REPORT = Command(
    "report", "compare tif eval results: a table, a scatter and the answers", cmd_report,
    (REPORT_FLAGS,),
)  # fmt: skip
