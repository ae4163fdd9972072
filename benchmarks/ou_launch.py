"""Run open-unlearning's ``src/eval.py`` offline (used by vs_open_unlearning.py, with the Python
of an open-unlearning environment; nothing of open-unlearning is copied here).

open-unlearning reads TOFU with ``datasets.load_dataset("locuslab/TOFU", name=...)``; this
launcher answers those calls from local JSON files (``$TOFU_JSON_DIR/<name>.json``), then runs
the checkout's ``src/eval.py`` with the remaining arguments (Hydra overrides).
Usage: ou_launch.py OPEN_UNLEARNING_CHECKOUT [hydra overrides ...]
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path


def local_tofu(load_dataset):
    folder = Path(os.environ["TOFU_JSON_DIR"])

    def load(path, *args, name=None, split=None, **kwargs):
        if path == "locuslab/TOFU":
            return load_dataset("json", data_files=str(folder / f"{name}.json"), split=split)
        return load_dataset(path, *args, name=name, split=split, **kwargs)

    return load


def main() -> None:
    checkout = Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(checkout / "src"))
    import datasets

    datasets.load_dataset = local_tofu(datasets.load_dataset)
    sys.argv = [str(checkout / "src" / "eval.py"), *sys.argv[2:]]
    os.chdir(checkout)
    runpy.run_path(str(checkout / "src" / "eval.py"), run_name="__main__")


if __name__ == "__main__":
    main()
