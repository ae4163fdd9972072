"""scripts/offline_bundle.py's choices, on hand-written inputs (the download itself needs PyPI
and is not run here): the platform tags pip needs spelled out, the node's own packages left
out (torch's whole stack, and what it has at an accepted version), the freeze file read; and
the archive to carry (wheels stored, not deflated, inside it: the same files, so pip installs
the same thing; its measured size is in benchmarks/results/offline_bundle.json)."""

from __future__ import annotations

import sys
import tarfile
import zipfile
from argparse import Namespace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import offline_bundle as bundle  # noqa: E402

ARGS = Namespace(python="3.11", arch="x86_64")


def item(name: str, version: str, *requires: str) -> dict:
    return {"metadata": {"name": name, "version": version, "requires_dist": list(requires)}}


def test_older_glibc_tags_are_listed_because_pip_does_not_widen_them():
    tags = bundle.platforms("2.28", "x86_64")
    assert tags[0] == "manylinux_2_28_x86_64" and "manylinux_2_17_x86_64" in tags
    assert tags[-3:] == ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    assert len(tags) == 24 + 3  # 2_28 down to 2_5, and the three legacy names


def test_the_freeze_file_gives_normalised_names(tmp_path):
    freeze = tmp_path / "freeze.txt"
    freeze.write_text(
        "PyYAML==6.0.2\ntorch==2.6.0+cu124\n-e git+https://x/y#egg=z\nfoo @ file:///f\n"
    )
    assert bundle.read_freeze(freeze) == {"pyyaml": "6.0.2", "torch": "2.6.0+cu124"}


def test_torch_and_everything_it_needs_are_the_nodes_own():
    items = [
        item("torch", "2.13.0", "sympy>=1.13", "filelock", "numpy; extra == 'numpy'"),
        item("sympy", "1.14.0", "mpmath<1.4"),
        item("mpmath", "1.3.0"),
        item("filelock", "3.20.0"),
        item("numpy", "2.4.6"),
        item("transformers", "5.25.0", "numpy>=1.17", "filelock"),
    ]
    assert bundle.torch_closure(items, ARGS) == {"torch", "sympy", "mpmath", "filelock"}


def test_only_what_the_node_lacks_or_has_too_old_is_downloaded():
    items = [
        item("torch", "2.13.0"),
        item("transformers", "5.25.0", "numpy>=1.17", "tokenizers<0.24,>=0.22"),
        item("tokenizers", "0.23.3"),
        item("numpy", "2.4.6"),
        item("hf-xet", "1.8.0"),
    ]
    base = {
        "torch": "2.13.0+cu126",
        "numpy": "2.1.0",
        "tokenizers": "0.20.3",
        "transformers": "4.46.3",
    }
    wanted = bundle.demanded(items, ["transformers>=5.23", "numpy>=2.0"], ARGS)
    needed = bundle.to_download(items, base, wanted, skip={"hf-xet"})
    # numpy 2.1 satisfies >=2.0 and >=1.17: kept; tokenizers 0.20 and transformers 4.46 are
    # too old; torch is never downloaded, hf-xet is skipped (not used offline)
    assert needed == ["tokenizers==0.23.3", "transformers==5.25.0"]


def test_the_minimal_requirements_are_the_projects_own_pins():
    minimal = bundle.project_requirements(full=False, smollm2=False)
    names = {bundle.normalize(r.split(">")[0].split("=")[0]) for r in minimal}
    assert names == bundle.MINIMAL
    assert any(r.startswith("transformers>=") for r in minimal)  # the floors are kept
    assert len(bundle.project_requirements(full=True, smollm2=False)) > len(minimal)


def wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


FILES = {
    "pkg/__init__.py": b"x = 1\n" * 500,
    "pkg/lib.so": bytes(range(256)) * 40,
    "pkg-1.0.dist-info/RECORD": b"pkg/__init__.py,,\n",
}


def members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def test_a_stored_wheel_has_the_same_files_uncompressed(tmp_path):
    source = wheel(tmp_path / "pkg-1.0-py3-none-any.whl", FILES)
    copy = tmp_path / "copy.whl"
    bundle.stored_wheel(source, copy)
    assert members(copy) == members(source) == list(FILES.items())  # names, order, bytes
    with zipfile.ZipFile(copy) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
        assert archive.testzip() is None  # CRCs hold


def test_the_archive_holds_the_folder_with_its_wheels_stored(tmp_path):
    out = tmp_path / "tif-bundle"
    out.mkdir()
    wheel(out / "pkg-1.0-py3-none-any.whl", FILES)
    (out / "pins.txt").write_text("pkg==1.0\n")
    (out / "install.sh").write_text(bundle.INSTALL)
    (out / "stale-0.1-py3-none-any.whl").write_text("not listed: left out")
    names = ["pkg-1.0-py3-none-any.whl", "pins.txt", "install.sh"]
    archive = bundle.write_archive(out, names)
    assert archive == tmp_path / "tif-bundle.tar.xz"
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == sorted(f"tif-bundle/{name}" for name in names)
        assert {(m.uid, m.mtime) for m in tar.getmembers()} == {(0, 0)}
        tar.extractall(tmp_path / "node", filter="data")
    unpacked = tmp_path / "node" / "tif-bundle"
    assert members(unpacked / names[0]) == list(FILES.items())
    assert (unpacked / "pins.txt").read_text() == "pkg==1.0\n"
    with zipfile.ZipFile(unpacked / names[0]) as copy:
        assert {info.compress_type for info in copy.infolist()} == {zipfile.ZIP_STORED}
    left = sorted(p.name for p in out.iterdir())  # the folder itself is left as it was
    assert left == sorted([*names, "stale-0.1-py3-none-any.whl"])
