"""Mutation testing: change one thing in a source file, run the tests that cover it, and count
the changes they catch ("killed") and miss ("survived"). Not part of CI (minutes per file).

    python benchmarks/mutation.py src/tif_unlearn/losses.py [--tests T ...] [--out FILE]
    make mutation FILES="src/tif_unlearn/losses.py src/tif_unlearn/tokens.py"

Mutations (one per mutant, on the file's AST; docstrings and ``__all__`` untouched):
``+``/``-`` and ``*``/``/`` swapped, ``**`` -> ``*``; ``<``/``<=``, ``>``/``>=``, ``==``/``!=``,
``is``/``is not``, ``in``/``not in`` swapped; ``and``/``or`` swapped; ``not`` and unary minus
dropped; numbers changed (n -> n + 1, x.y -> 2·x.y, 0 -> 1); ``True``/``False`` swapped;
reductions swapped (``.mean``/``.sum``, ``.max``/``.min``, ``.any``/``.all``).

Each mutant runs in a forked child of one warm process (torch and the package imported once):
the child executes the mutated source into the real module object (so every ``from .. import
losses`` or ``from .. import tokens`` user sees it), then runs pytest with ``-x`` on the tests
(fast ones first). Exit 0 = survived, test failure = killed, past ``--timeout`` = timeout.

Survivors are listed with a note from ``benchmarks/mutation_notes.json`` (``"LINE: mutation"``
-> a one-line reason it is equivalent, or the test added to kill it). Results are written to
``benchmarks/results/mutation.json`` (merged per file, so files can be run one at a time).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
NOTES = ROOT / "benchmarks" / "mutation_notes.json"
LOSS_TESTS = [
    "tests/unit/test_losses.py",
    "tests/unit/test_losses_mutants.py",
    "tests/unit/test_method_identities.py",
]
DEFAULT_TESTS = {"src/tif_unlearn/losses.py": LOSS_TESTS, "src/tif_unlearn/tokens.py": LOSS_TESTS}

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


def module_name(path: Path) -> str:
    relative = path.resolve().relative_to(ROOT / "src").with_suffix("")
    return ".".join(relative.parts)


def run_mutant(module, code: str, tests: list[str], timeout: float) -> str:
    """'killed', 'survived' or 'timeout' for one mutant, in a forked child."""
    pid = os.fork()
    if pid == 0:  # the child: mutate the live module, run the tests, exit with pytest's code
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest

            exec(compile(code, module.__file__, "exec"), module.__dict__)
            args = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *tests]
            os._exit(int(pytest.main(args)))
        except BaseException:
            os._exit(99)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "timeout"


def mutate_file(path: Path, tests: list[str], timeout: float, notes: dict) -> dict:
    source = path.read_text(encoding="utf-8")
    module = importlib.import_module(module_name(path))
    points = mutation_points(source)
    counts = {"killed": 0, "survived": 0, "timeout": 0}
    survivors, started = [], time.monotonic()
    for index, (line, label) in enumerate(points):
        status = run_mutant(module, mutant_source(source, index), tests, timeout)
        counts[status] += 1
        print(f"{path.name}:{line} {label}: {status}", flush=True)
        if status != "killed":
            key = f"{line}: {label}"
            text = source.splitlines()[line - 1].strip() if line else ""
            survivors.append({"mutant": key, "status": status, "code": text,
                              "note": notes.get(path.name, {}).get(key, "")})  # fmt: skip
    total = len(points)
    return {
        "tests": tests,
        "mutants": total,
        **counts,
        "score_killed": round(counts["killed"] / total, 4) if total else None,
        "seconds": round(time.monotonic() - started, 1),
        "survivors": survivors,
    }


def attach_notes(out: Path) -> int:
    """Fill each survivor's note from NOTES (after editing the notes, without a rerun)."""
    notes = json.loads(NOTES.read_text(encoding="utf-8")) if NOTES.is_file() else {}
    results = json.loads(out.read_text(encoding="utf-8"))
    for key, result in results["files"].items():
        for survivor in result["survivors"]:
            survivor["note"] = notes.get(Path(key).name, {}).get(survivor["mutant"], "")
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--tests", nargs="*", help="test files (default: per file, see source)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--notes-only", action="store_true", help="re-attach the notes to --out's survivors"
    )
    args = parser.parse_args(argv)
    if args.notes_only:
        return attach_notes(Path(args.out))
    os.chdir(ROOT)
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch  # noqa: F401  (warm: every child inherits the imports)
    import transformers  # noqa: F401

    notes = json.loads(NOTES.read_text(encoding="utf-8")) if NOTES.is_file() else {}
    out = Path(args.out)
    results = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    results.setdefault("files", {})
    for name in args.files:
        path = (ROOT / name).resolve()
        key = str(path.relative_to(ROOT))
        tests = args.tests or DEFAULT_TESTS.get(key)
        if not tests:
            parser.error(f"no default tests for {key}: pass --tests")
        results["files"][key] = mutate_file(path, tests, args.timeout, notes)
    results["not_run"] = "files not listed under 'files' were not mutation-tested"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for key, result in results["files"].items():
        print(f"{key}: {result['killed']}/{result['mutants']} killed, "
              f"{result['survived']} survived, {result['timeout']} timeout")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
