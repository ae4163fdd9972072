"""The output folder: refused before a run when it would overwrite something, written at the
end (the model or LoRA adapter, ``tif_run.json`` and a model card) by rank 0 only, then the
checkpoints are removed and the folder is pushed to the hub if asked."""

from __future__ import annotations

from pathlib import Path

from ..config.schema import TrainConfig
from ..config.used import used_options
from ..errors import TifError
from ..lineage import with_lineage
from ..models import save_model
from ..report.model_card import model_card
from . import lora
from .checkpoints import remove_checkpoints
from .distributed import gathered_state_dict, is_main_process, rank
from .runtime import push_if_asked

RUN_FILE = "tif_run.json"


def check_output(out: str, model: str, overwrite: bool) -> None:
    """Refuse to write over the input model, or into a non-empty folder without --overwrite."""
    out_path = Path(out)
    if Path(model).exists() and out_path.resolve() == Path(model).resolve():
        raise TifError(f"--out {out} is the input model folder; choose another folder")
    if out_path.exists() and not out_path.is_dir():
        raise TifError(f"--out {out} exists and is not a folder")
    if out_path.is_dir() and any(out_path.iterdir()) and not overwrite:
        raise TifError(f"--out {out} is not empty (pass --overwrite to replace it)")


def run_card(record: dict, model: str) -> str:
    """The model card: the options that had an effect, the starting model's lineage."""
    shown = {**record, "config": used_options(record["config"])}
    return with_lineage(model_card(shown), model)


def save_output(trainer, model, tokenizer, config: TrainConfig, record: dict) -> None:
    """Save the trained model (the LoRA adapter folder, or merged) from rank 0 only."""
    state_dict = gathered_state_dict(trainer)  # a collective under DeepSpeed: every rank
    if not is_main_process():
        return
    record["saved_by_rank"] = rank()
    model = lora.model_to_save(model, config.merge_lora)
    card = {"README.md": run_card(record, config.model)}
    save_model(
        model,
        tokenizer,
        config.out,
        extra_json={RUN_FILE: record},
        state_dict=state_dict,
        extra_text=card,
    )


def finish_output(trainer, model, tokenizer, config: TrainConfig, record: dict) -> Path:
    """Save the run, then (rank 0) remove its checkpoints and push it if ``--push-to-hub``."""
    save_output(trainer, model, tokenizer, config, record)
    if is_main_process():
        remove_checkpoints(config.out)
        push_if_asked(config)
    return Path(config.out)
