"""The ``tif`` command line: one parser (``app``), its subcommands' modules, the reference."""

from .app import main

__all__ = ["main"]
