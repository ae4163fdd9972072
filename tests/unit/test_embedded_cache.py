"""The embedded model's converted cache folder: written whole or not at all, so that two
processes converting at once (two benchmark workers, two test workers) never load half of it.
The GGUF reader is replaced by the tiny model: what is tested is the cache, not the reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import build_model
from tif_unlearn import models


@pytest.fixture
def cache(tmp_path, monkeypatch, tokenizer):
    monkeypatch.setenv("TIF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "embedded_gguf_path", lambda name: tmp_path / f"{name}.gguf")
    monkeypatch.setattr(
        models, "_load_gguf", lambda path, dtype: (build_model(len(tokenizer)), tokenizer)
    )
    return tmp_path / "cache"


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name != "smollm2-135m")


def test_the_final_folder_is_never_written_in_place(cache, monkeypatch):
    written_to = []
    real_save = models.save_model

    def save_and_record(model, tokenizer, folder):
        written_to.append(Path(folder))
        real_save(model, tokenizer, folder)

    monkeypatch.setattr(models, "save_model", save_and_record)
    folder = models.ensure_embedded_folder("smollm2-135m")
    assert folder == cache / "smollm2-135m" and (folder / "config.json").is_file()
    assert written_to and all(path != folder for path in written_to)
    assert leftovers(cache) == []
    model, _ = models.load_model(str(folder))
    assert model.config.num_hidden_layers == 2


def test_a_folder_finished_first_by_another_process_is_kept(cache, monkeypatch, tokenizer):
    other = cache / "smollm2-135m"

    def other_process_wins(path, dtype):
        models.save_model(build_model(len(tokenizer), seed=1), tokenizer, other)
        (other / "written-by-the-other-process").touch()
        return build_model(len(tokenizer)), tokenizer

    monkeypatch.setattr(models, "_load_gguf", other_process_wins)
    assert models.ensure_embedded_folder("smollm2-135m") == other
    assert (other / "written-by-the-other-process").is_file()
    assert leftovers(cache) == []


def test_a_half_written_folder_of_an_older_version_is_replaced(cache):
    half = cache / "smollm2-135m"
    half.mkdir(parents=True)
    (half / "model.safetensors").write_bytes(b"cut short")
    folder = models.ensure_embedded_folder("smollm2-135m")
    assert (folder / "config.json").is_file()
    models.load_model(str(folder))
    assert leftovers(cache) == []
