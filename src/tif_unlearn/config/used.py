"""The options of a run that had an effect, for its model card's command line: an option that
only refines a switch left off (``--eval-max-items`` without ``--eval-every``) is left out.
``tif_run.json`` keeps every option."""

from __future__ import annotations

# switch -> the options that act only when it is set
DEPENDENT_OPTIONS = {
    "eval_every": ("eval_data_dir", "eval_forget_split", "eval_max_items", "keep_best"),
    "lora_r": ("lora_alpha", "lora_targets", "merge_lora"),
    "push_to_hub": ("hub_private",),
}


def used_options(config: dict) -> dict:
    """``config`` (option -> value) less the options whose switch is off (unset, 0 or False)."""
    unused = {
        name
        for switch, dependents in DEPENDENT_OPTIONS.items()
        if switch in config and not config[switch]
        for name in dependents
    }
    return {name: value for name, value in config.items() if name not in unused}
