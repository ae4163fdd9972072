"""Mutation testing: change one thing in a source file, run the tests that cover it, and count
the changes they catch ("killed") and miss ("survived"). Not part of CI (minutes per file).

    python benchmarks/mutation.py src/tif_unlearn/losses.py [--tests T ...] [--out FILE]
    make mutation FILES="src/tif_unlearn/losses.py src/tif_unlearn/tokens.py"
    python benchmarks/mutation.py FILE --survivors   # after adding tests: rerun the survivors
    python benchmarks/mutation.py FILE --only "44: drop USub" --tests tests/unit/test_x.py::test_y

Mutations (one per mutant, on the file's AST; docstrings and ``__all__`` untouched):
``+``/``-`` and ``*``/``/`` swapped, ``**`` -> ``*``; ``<``/``<=``, ``>``/``>=``, ``==``/``!=``,
``is``/``is not``, ``in``/``not in`` swapped; ``and``/``or`` swapped; ``not`` and unary minus
dropped; numbers changed (n -> n + 1, x.y -> 2·x.y, 0 -> 1); ``True``/``False`` swapped;
reductions swapped (``.mean``/``.sum``, ``.max``/``.min``, ``.any``/``.all``).

Each mutant runs in a forked child of one warm process (torch, transformers and the mutated
module's dependencies imported once): the child forgets every ``tif_unlearn`` module and imports
the package afresh with the mutated source in place of the file (so every binding sees the
mutant: ``from .base import f``, registries such as ``METHODS``, dicts of functions), then runs
pytest with ``-x -m "not slow"`` on the tests (fast ones first). Exit 0 = survived, test
failure = killed, past ``--timeout`` = timeout.

Survivors are listed with a note from ``benchmarks/mutation_notes.json`` (``"LINE: mutation"``,
``" #2"`` added for a line's second identical one -> a one-line reason it is equivalent, or the
test added to kill it). Results are written to
``benchmarks/results/mutation.json`` (merged per file, so files can be run one at a time), with
the date, commit and a hash of the source. ``--survivors`` reruns only the survivors recorded
for an unchanged source, except those noted equivalent, and merges the counts (a test added
kills, it never revives a mutant);
``--only`` runs the named mutants and prints their status (to see a new test fail on its mutant).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mutants import import_mutant, mutant_keys, mutant_source, mutation_points
from mutation_targets import DEFAULT_TESTS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mutation.json"
NOTES = ROOT / "benchmarks" / "mutation_notes.json"
# Imported once by the parent: torch, transformers, pytest with its plugins, what conftest uses.
WARM = ("torch", "transformers", "pytest", "hypothesis", "_hypothesis_pytestplugin",
        "anyio.pytest_plugin", "tokenizers", "transformers.models.llama.modeling_llama")  # fmt: skip


def module_name(path: Path) -> str:
    relative = path.resolve().relative_to(ROOT / "src").with_suffix("")
    return ".".join(relative.parts)


def run_mutant(path: Path, code: str, tests: list[str], timeout: float) -> str:
    """'killed', 'survived' or 'timeout' for one mutant, in a forked child."""
    pid = os.fork()
    if pid == 0:  # the child: load the mutant, run the tests, exit with pytest's code
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            import pytest

            import_mutant(module_name(path), path, code)
            # -n 0: xdist workers (pyproject.toml's -n auto) would import the unmutated package
            args = ["-x", "-q", "-m", "not slow", "-p", "no:randomly", "-p", "no:cacheprovider"]
            args += ["-n", "0"]
            args += tests
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


CHECKED: set[tuple[str, ...]] = set()  # test sets seen passing on unmutated sources


def warm_imports(tests: list[str]) -> None:
    """Import the package modules the tests import: their third-party dependencies (scipy,
    accelerate, ...) then stay loaded in every child, which re-imports only the package."""
    for test in tests:
        tree = ast.parse((ROOT / test.split("::")[0]).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tif_unlearn"):
                importlib.import_module(node.module)


def check_unmutated(path: Path, source: str, tests: list[str], timeout: float) -> None:
    """The tests must pass on the file as it is (parsed and unparsed), else every mutant dies.
    Once per set of tests: a package file's own source cannot make other tests fail."""
    if tuple(tests) in CHECKED:
        return
    CHECKED.add(tuple(tests))
    status = run_mutant(path, mutant_source(source, -1), tests, timeout)
    if status != "survived":
        raise SystemExit(f"{path.name}: the tests do not pass unmutated ({status}): {tests}")


def mutate_file(path: Path, tests: list[str], timeout: float, notes: dict, only=None) -> dict:
    """Run every mutant of ``path`` (or those whose ``"LINE: mutation"`` key is in ``only``)."""
    source = path.read_text(encoding="utf-8")
    importlib.import_module(module_name(path))  # warm: its dependencies stay imported
    warm_imports(tests)
    check_unmutated(path, source, tests, timeout)
    points = mutation_points(source)
    counts = {"killed": 0, "survived": 0, "timeout": 0}
    survivors, started = [], time.monotonic()
    for index, ((line, _), key) in enumerate(zip(points, mutant_keys(points), strict=True)):
        if only is not None and key not in only:
            continue
        status = run_mutant(path, mutant_source(source, index), tests, timeout)
        counts[status] += 1
        print(f"{path.name}:{key}: {status}", flush=True)
        if status != "killed":
            text = source.splitlines()[line - 1].strip() if line else ""
            survivors.append({"mutant": key, "status": status, "code": text,
                              "note": notes.get(path.name, {}).get(key, "")})  # fmt: skip
    return summary(
        {"run": f"{time.strftime('%Y-%m-%d')}, commit {commit()}", "tests": tests,
         "source_sha256": hashlib.sha256(source.encode()).hexdigest(), **counts,
         "seconds": round(time.monotonic() - started, 1), "survivors": survivors}
    )  # fmt: skip


def summary(result: dict) -> dict:
    """Counts and scores: of all mutants, and of those whose note does not call them equivalent."""
    total = result["killed"] + result["survived"] + result["timeout"]
    notes = [s.get("note") or "" for s in result.get("survivors", [])]
    real = total - sum(note.startswith("equivalent") for note in notes)
    return {**result, "mutants": total, "equivalent": total - real,
            "score_killed": round(result["killed"] / total, 4) if total else None,
            "score_non_equivalent": round(result["killed"] / real, 4) if real else None}  # fmt: skip


def rerun_survivors(path: Path, previous: dict, tests, timeout: float, notes: dict) -> dict:
    """Rerun ``previous``'s survivors (same source; tests only added since): the mutants it
    killed stay killed, so the merged counts equal those of a full run. Survivors whose note
    says "equivalent" are carried over (a test cannot kill an equivalent mutant)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if previous.get("source_sha256") != digest:
        raise SystemExit(f"{path.name} changed since its last run: run it in full")
    equivalent = [s for s in previous["survivors"] if s["note"].startswith("equivalent")]
    only = {s["mutant"] for s in previous["survivors"]} - {s["mutant"] for s in equivalent}
    if not only:
        return previous
    again = mutate_file(path, tests, timeout, notes, only)
    return summary(
        {**previous, "run": f"{previous['run']}; survivors not noted equivalent rerun "
         f"{again['run']}", "tests": tests, "killed": previous["killed"] + again["killed"],
         "survived": len(equivalent) + again["survived"], "timeout": again["timeout"],
         "seconds": previous["seconds"] + again["seconds"],
         "survivors": equivalent + again["survivors"]}
    )  # fmt: skip


def commit() -> str:
    """HEAD's short hash, with ``+changes`` when src/ or tests/ differ from it."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    dirty = git("status", "--porcelain", "--", "src", "tests").strip()
    return git("rev-parse", "--short", "HEAD").strip() + (" +changes" if dirty else "")


def attach_notes(out: Path) -> int:
    """Fill each survivor's note from NOTES (after editing the notes, without a rerun)."""
    notes = json.loads(NOTES.read_text(encoding="utf-8")) if NOTES.is_file() else {}
    results = json.loads(out.read_text(encoding="utf-8"))
    for key, result in results["files"].items():
        for survivor in result["survivors"]:
            survivor["note"] = notes.get(Path(key).name, {}).get(survivor["mutant"], "")
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--tests", nargs="*", help="test files (default: per file, see source)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--only", nargs="*", help='run only these mutants ("LINE: mutation"); '
                        "prints their status and writes nothing")  # fmt: skip
    parser.add_argument("--survivors", action="store_true", help="rerun only the survivors "
                        "of the file's last run in --out, after adding tests")  # fmt: skip
    parser.add_argument(
        "--notes-only", action="store_true", help="re-attach the notes to --out's survivors"
    )
    args = parser.parse_args(argv)
    for name in [] if args.notes_only or args.tests else args.files:
        if str((ROOT / name).resolve().relative_to(ROOT)) not in DEFAULT_TESTS:
            parser.error(f"no default tests for {name}: pass --tests")
    return args


def run_file(name: str, args, results: dict, notes: dict) -> dict:
    """The result of mutating ``name`` (a full run, or its survivors' rerun)."""
    path = (ROOT / name).resolve()
    key = str(path.relative_to(ROOT))
    tests = args.tests or DEFAULT_TESTS[key]
    if args.survivors:
        return rerun_survivors(path, results["files"][key], tests, args.timeout, notes)
    return mutate_file(path, tests, args.timeout, notes, args.only and set(args.only))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.notes_only:
        return attach_notes(Path(args.out))
    os.chdir(ROOT)
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for name in WARM:  # every child inherits these imports
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    notes = json.loads(NOTES.read_text(encoding="utf-8")) if NOTES.is_file() else {}
    out = Path(args.out)
    results = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    results.setdefault("files", {})
    for name in args.files:
        result = run_file(name, args, results, notes)
        if args.only:
            continue
        results["files"][str((ROOT / name).resolve().relative_to(ROOT))] = result
    if args.only:
        return 0
    results.setdefault("not_run", "files not listed under 'files' were not mutation-tested")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for key, result in results["files"].items():
        print(f"{key}: {result['killed']}/{result['mutants']} killed, "
              f"{result['survived']} survived, {result['timeout']} timeout")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
