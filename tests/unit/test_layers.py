"""The package's layers: a module imports only from its own layer or lower ones, at module level
and inside functions alike (docs/architecture.md draws the same picture)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "tif_unlearn"

# Lowest first. A top-level module or subpackage belongs to exactly one layer.
LAYERS = [
    {"__init__", "errors", "tokens", "devices", "locking", "resources", "hub_check", "lineage"},
    {"config"},
    {"data", "models", "model_saving", "model_casting", "losses"},
    {"methods", "identify"},
    {"evaluate", "report", "recitation"},
    {"train"},
    {"demo"},
    {"cli"},
]


def layer_of(part: str) -> int:
    for index, members in enumerate(LAYERS):
        if part in members:
            return index
    raise AssertionError(f"tif_unlearn.{part} is in no layer: add it to LAYERS")


def top_part(module: str) -> str:
    """``tif_unlearn.train.streams`` -> ``train``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every ``tif_unlearn`` module ``path`` imports, with the line, relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tif_unlearn")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("tif_unlearn"):
                found += [(node.lineno, _module_or_package(target, a.name)) for a in node.names]
    return found


def _module_or_package(package: str, name: str) -> str:
    """``from package import name``: the submodule when ``name`` is one, else ``package``."""
    folder = PACKAGE.parent.joinpath(*package.split("."))
    is_module = (folder / f"{name}.py").is_file() or (folder / name).is_dir()
    return f"{package}.{name}" if is_module else package


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = layer_of(top_part(module_name(path)))
        for line, target in imported_modules(path):
            if layer_of(top_part(target)) > own:
                problems.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}")
    return problems


def test_every_module_imports_only_from_its_layer_or_below():
    assert upward_imports() == []


def test_the_check_sees_imports_inside_functions(tmp_path, monkeypatch):
    source = "def late():\n    from ..cli.app import main\n"
    (tmp_path / "tif_unlearn" / "data").mkdir(parents=True)
    module = tmp_path / "tif_unlearn" / "data" / "late.py"
    module.write_text(source)
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "tif_unlearn")
    assert upward_imports() == ["data/late.py:2 imports tif_unlearn.cli.app"]


@pytest.mark.parametrize("part", ["errors", "config", "data", "methods", "evaluate", "cli"])
def test_every_layer_is_a_real_part_of_the_package(part):
    assert (PACKAGE / part).is_dir() or (PACKAGE / f"{part}.py").is_file()
