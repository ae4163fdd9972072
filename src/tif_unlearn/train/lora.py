"""LoRA adapters through ``peft``: wrap a model, a memory-free live reference, save, load back.

With ``--lora-r N`` only low-rank adapters on the ``--lora-targets`` modules are trained; the
base weights stay frozen. The live reference of a LoRA run is the same model with its adapters
disabled (no second copy of the weights in memory). The output is the adapter folder (peft's
``adapter_config.json`` + ``adapter_model.safetensors``), or with ``--merge-lora`` the merged
full model.
"""

from __future__ import annotations

import torch

from ..errors import TifError


def parse_targets(spec: str) -> list[str]:
    """``"q_proj, v_proj"`` -> ``["q_proj", "v_proj"]``."""
    return [name.strip() for name in spec.split(",") if name.strip()]


def add_lora(
    model,
    *,
    r: int,
    alpha: float,
    targets: str,
    gradient_checkpointing: bool = False,
    seed: int = 0,
    base: str | None = None,
    revision: str | None = None,
):
    """Freeze ``model`` and wrap it with fresh LoRA adapters (B = 0: outputs are unchanged).

    The random A matrices are drawn after seeding with ``seed``, so runs are reproducible.
    ``base`` (the ``--model`` spec) and ``revision`` are what the saved adapter config names as
    its base model: a local folder as an absolute path, so the adapter loads from anywhere.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    if gradient_checkpointing:
        # Checkpointed blocks need an input that requires grad when the embeddings are frozen.
        model.enable_input_require_grads()
    config = LoraConfig(
        r=r, lora_alpha=alpha, target_modules=parse_targets(targets), task_type="CAUSAL_LM"
    )
    set_seed(seed)
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as err:
        raise TifError(f"--lora-targets {targets}: {str(err).splitlines()[0]}") from err
    if base:
        name_base(peft_model, base, revision)
    return peft_model


def name_base(peft_model, base: str, revision: str | None) -> None:
    """Record the base model as ``load_model`` can find it again from any working folder."""
    from ..models import adapter_base_reference

    adapter = peft_model.peft_config[peft_model.active_adapter]
    adapter.base_model_name_or_path = adapter_base_reference(base)
    adapter.revision = revision


def maybe_add_lora(model, config):
    """``add_lora`` with the run's ``--lora-*`` options; ``model`` itself when ``lora_r`` is 0."""
    if not config.lora_r:
        return model
    return add_lora(
        model,
        r=config.lora_r,
        alpha=config.lora_alpha,
        targets=config.lora_targets,
        gradient_checkpointing=config.gradient_checkpointing,
        seed=config.seed,
        base=config.model,
        revision=config.revision,
    )


def is_peft_model(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


class AdapterDisabledReference:
    """The base model of a ``PeftModel`` as a live reference: a forward with adapters off.

    Called like a model by ``reference_values`` (under ``torch.no_grad``); dropout is switched
    off for the call and the previous train/eval mode restored afterwards.
    """

    def __init__(self, peft_model):
        self.peft_model = peft_model

    def __call__(self, **inputs):
        was_training = self.peft_model.training
        self.peft_model.eval()
        try:
            with self.peft_model.disable_adapter():
                return self.peft_model(**inputs)
        finally:
            self.peft_model.train(was_training)


def model_to_save(model, merge: bool):
    """The merged plain model with ``merge``; otherwise ``model`` itself (adapter folder)."""
    if merge and is_peft_model(model):
        return model.merge_and_unload()
    return model


def load_state_into(model, weights: dict[str, torch.Tensor]) -> None:
    """Load weights saved by ``model.save_pretrained`` back (adapter keys for a PeftModel)."""
    if is_peft_model(model):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, weights)
    else:
        model.load_state_dict(weights, strict=False)
