"""User-facing errors: the CLI prints them as one line on stderr and exits with code 2."""

from __future__ import annotations


class TifError(Exception):
    """A problem with the user's input or environment (not a bug): shown without a traceback."""


class DataError(TifError):
    """Bad input data, located by file, line (1-based) and field where known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        entry: int | None = None,
    ):
        self.path, self.line, self.field, self.reason = path, line, field, message
        self.entry = entry  # 0-based position of the row in its file
        where = path or "<data>"
        if line is not None:
            where += f":{line}"
        if entry is not None:
            where += f": entry {entry}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")
