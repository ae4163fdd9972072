"""`tif report`: one HTML page (and a PNG) comparing `tif eval tofu` or `tif eval muse` results
(``report/results_report.py``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from .options import Command, Flags


@dataclass
class ReportArgs:
    results: tuple[str, ...] = field(
        metadata={
            "help": "results .json files of tif eval tofu (or all of tif eval muse) to compare",
            "positional": True,
        }
    )
    out: str = field(
        default="report.html",
        metadata={"help": "the HTML page to write; the scatter goes beside it as .png"},
    )


REPORT_FLAGS = Flags(ReportArgs, show_defaults=True)


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.results_report import write_report

    report = REPORT_FLAGS.build(args)
    for path in write_report(list(report.results), report.out):
        print(f"written: {path}")
    return 0


REPORT = Command(
    "report", "compare tif eval results: a table, a scatter and the answers", cmd_report,
    (REPORT_FLAGS,),
)  # fmt: skip
