"""Every subcommand's flags are generated from dataclasses: one ``--flag`` per field, its help
text from the field's ``metadata["help"]`` (``choices`` too, when given), its type and default
from the field. Handlers build the dataclasses back from the parsed arguments
(:meth:`Flags.build`), never field by field.

- a field without a default is a required flag;
- a ``bool`` field is a switch: ``--name`` when its default is False, ``--no-name`` when it is
  True (the field is False when the switch is given);
- a ``tuple[str, ...]`` field takes a comma-separated list (``--methods tif,npo``), or, with
  ``metadata["positional"]``, one or more words without a flag (``tif report a.json b.json``).
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, fields


def comma_list(text: str) -> tuple[str, ...]:
    """``"tif, npo"`` -> ``("tif", "npo")``; empty items are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def value_type(hint) -> Callable:
    """What turns a flag's text into the field's value: ``int | None`` -> ``int``, and
    ``tuple[str, ...]`` -> :func:`comma_list`."""
    if typing.get_origin(hint) is tuple:
        return comma_list
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return value_type(next(a for a in typing.get_args(hint) if a is not type(None)))
    return hint


@dataclass(frozen=True)
class Flags:
    """The fields of ``cls``, less ``skip`` (values the command line does not set), as flags.

    ``show_defaults`` appends "(default: ...)" to the help (unless it says its default).
    ``yaml``: the flags override a YAML file (``tif finetune|unlearn --config``), so a flag
    that is not given is None rather than its default, and the help always shows the default.
    """

    cls: type
    skip: tuple[str, ...] = ()
    show_defaults: bool = False
    yaml: bool = False

    def fields(self) -> list[Field]:
        return [f for f in fields(self.cls) if f.name not in self.skip]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        hints = typing.get_type_hints(self.cls)
        for f in self.fields():
            if f.metadata.get("positional"):
                parser.add_argument(
                    f.name, nargs="+", metavar=f.name.upper(), help=self.help(f, False)
                )
                continue
            flag, options = self.argument(f, value_type(hints[f.name]))
            parser.add_argument(flag, dest=f.name, **options)

    def argument(self, f: Field, kind: Callable) -> tuple[str, dict]:
        """The flag of field ``f`` and its ``add_argument`` options."""
        flag = "--" + f.name.replace("_", "-")
        default = None if f.default is MISSING else f.default
        if self.yaml:
            options = {"action": "store_const", "const": True} if kind is bool else {"type": kind}
            return flag, {**options, "help": self.help(f, show=True)}
        if kind is bool:
            action = "store_false" if default else "store_true"
            flag = flag.replace("--", "--no-", 1) if default else flag
            return flag, {"action": action, "help": self.help(f, show=False)}
        required = f.default is MISSING and f.default_factory is MISSING
        options = {"type": kind, "default": default, "required": required}
        if "choices" in f.metadata:
            options["choices"] = f.metadata["choices"]
        return flag, {**options, "help": self.help(f, show=self.show_defaults and not required)}

    @staticmethod
    def help(f: Field, show: bool) -> str:
        text = f.metadata.get("help", "")
        if show and "(default:" not in text:
            text += f" (default: {None if f.default is MISSING else f.default})"
        return text.replace("%", "%%")  # argparse formats help with %

    def values(self, args: argparse.Namespace) -> dict:
        values = {f.name: getattr(args, f.name) for f in self.fields()}
        positional = (f.name for f in self.fields() if f.metadata.get("positional"))
        return {**values, **{name: tuple(values[name]) for name in positional}}

    def build(self, args: argparse.Namespace, **overrides):
        """The dataclass from the parsed arguments (skipped fields keep their defaults)."""
        return self.cls(**{**self.values(args), **overrides})


@dataclass(frozen=True)
class Command:
    """``tif ... <name>``: its one-line help, its handler and the dataclasses whose fields are its
    flags, in this order."""

    name: str
    help: str
    handler: Callable[[argparse.Namespace], int]
    flags: tuple[Flags, ...]

    def add_to(self, subparsers) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(self.name, help=self.help)
        for part in self.flags:
            part.add_to(parser)
        parser.set_defaults(handler=self.handler)
        return parser
