"""The mutations of benchmarks/mutation.py, on a source file's AST (see its docstring), and the
import hook that loads a mutant in place of its file.

Docstrings, ``__all__`` and annotations are never mutated.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.util
import sys
from pathlib import Path

BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
          ast.Pow: ast.Mult, ast.FloorDiv: ast.Mult}  # fmt: skip
CMPOPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
          ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn,
          ast.NotIn: ast.In}  # fmt: skip
METHODS = {"mean": "sum", "sum": "mean", "max": "min", "min": "max", "any": "all", "all": "any"}


class Mutator(ast.NodeTransformer):
    """Walk the tree counting mutation points; change the one numbered ``target``."""

    def __init__(self, target: int | None = None):
        self.target, self.count, self.found = target, 0, []

    def _point(self, node: ast.AST, label: str) -> bool:
        index = self.count
        self.count += 1
        self.found.append((getattr(node, "lineno", 0), label))
        return index == self.target

    def generic_visit(self, node):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return node  # docstrings
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return node
        if isinstance(node, ast.arg | ast.AnnAssign):
            return node
        return super().generic_visit(node)

    def visit_FunctionDef(self, node):
        node.returns = None  # annotations are never mutated
        for arg in node.args.args + node.args.kwonlyargs:
            arg.annotation = None
        return self.generic_visit(node)

    def visit_BinOp(self, node):
        node = self.generic_visit(node)
        new = BINOPS.get(type(node.op))
        if new and self._point(node, f"{type(node.op).__name__} -> {new.__name__}"):
            node.op = new()
        return node

    def visit_Compare(self, node):
        node = self.generic_visit(node)
        for i, op in enumerate(node.ops):
            new = CMPOPS.get(type(op))
            if new and self._point(node, f"{type(op).__name__} -> {new.__name__}"):
                node.ops[i] = new()
        return node

    def visit_BoolOp(self, node):
        node = self.generic_visit(node)
        new = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._point(node, f"{type(node.op).__name__} -> {new.__name__}"):
            node.op = new()
        return node

    def visit_UnaryOp(self, node):
        node = self.generic_visit(node)
        if isinstance(node.op, ast.USub | ast.Not) and self._point(
            node, f"drop {type(node.op).__name__}"
        ):
            return node.operand
        return node

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool):
            if self._point(node, f"{value} -> {not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int):
            if self._point(node, f"{value} -> {value + 1}"):
                return ast.copy_location(ast.Constant(value + 1), node)
        elif isinstance(value, float):
            new = 1.0 if value == 0 else value * 2
            if self._point(node, f"{value} -> {new}"):
                return ast.copy_location(ast.Constant(new), node)
        return node

    def visit_Attribute(self, node):
        node = self.generic_visit(node)
        new = METHODS.get(node.attr)
        if new and self._point(node, f".{node.attr} -> .{new}"):
            node.attr = new
        return node


def mutation_points(source: str) -> list[tuple[int, str]]:
    mutator = Mutator()
    mutator.visit(ast.parse(source))
    return mutator.found


def mutant_source(source: str, index: int) -> str:
    tree = ast.parse(source)
    Mutator(index).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def mutant_keys(points: list[tuple[int, str]]) -> list[str]:
    """``"LINE: mutation"`` for each point; the n-th repeat on one line gets ``" #n"``."""
    seen: dict[str, int] = {}
    keys = []
    for line, label in points:
        key = f"{line}: {label}"
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key} #{seen[key]}")
    return keys


class MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook: the module ``name`` is executed from ``code`` (the mutant) instead of its file."""

    def __init__(self, name: str, path: Path, code: str):
        self.name, self.path, self.code = name, path, code

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        package = self.path.name == "__init__.py"
        spec = importlib.util.spec_from_loader(
            fullname, self, origin=str(self.path), is_package=package
        )
        spec.has_location = True  # sets __file__
        if package:
            spec.submodule_search_locations = [str(self.path.parent)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(self.code, str(self.path), "exec"), module.__dict__)


def import_mutant(name: str, path: Path, code: str) -> None:
    """Forget the package's modules; its next import (by the tests) loads the mutant."""
    package = name.split(".")[0]
    for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[loaded]
    sys.meta_path.insert(0, MutantFinder(name, path, code))
