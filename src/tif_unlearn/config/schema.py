"""Run configurations: dataclasses validated in ``__post_init__``, optionally from a flat YAML."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path

from ..errors import TifError
from .methods import method_options

STEP_COUNTS = ("ceil", "floor")
REPORT_TO = ("none", "tensorboard", "wandb", "mlflow")
SCHEDULERS = ("linear", "constant", "cosine", "constant_with_warmup")
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16", "float64")
SHORT_TEXTS = ("error", "keep")
LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


@dataclass
class TrainConfig:
    """Options shared by ``tif finetune`` and ``tif unlearn``."""

    model: str = field(
        default="smollm2-135m", metadata={"help": "HF folder, hub id, .gguf or smollm2-135m"}
    )
    revision: str | None = field(
        default=None, metadata={"help": "hub model: branch, tag or commit to load (hub ids only)"}
    )
    token: str | None = field(
        default=None,
        repr=False,
        metadata={
            "help": "hub access token for gated or private models and hf:// data; without it "
            "$HF_TOKEN or `hf auth login` (better: a flag shows in shell history and ps). Never "
            "written to tif_run.json, checkpoints or the logs",
            "secret": True,
        },
    )
    out: str = field(default="", metadata={"help": "output model folder"})
    epochs: float = field(default=10.0, metadata={"help": "training epochs"})
    lr: float = field(default=1e-5, metadata={"help": "peak learning rate (AdamW)"})
    batch_size: int = field(default=4, metadata={"help": "per-device batch size"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps"})
    max_steps: int = field(default=-1, metadata={"help": "stop after N optimizer steps (-1: off)"})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_epochs: float = field(default=1.0, metadata={"help": "linear warm-up length in epochs"})
    scheduler: str = field(default="linear", metadata={"help": f"one of {SCHEDULERS}"})
    step_count: str = field(
        default="ceil",
        metadata={
            "help": "ceil: every epoch ends with an optimizer step (a partial accumulation "
            "window too); floor: epochs run into each other and only full windows step, "
            "floor(epochs x N / effective batch) steps (the TIF paper's count)"
        },
    )
    seed: int = field(default=0, metadata={"help": "random seed (data order, retain pairing)"})
    max_length: int = field(default=512, metadata={"help": "truncate examples to N tokens"})
    dtype: str = field(
        default="auto",
        metadata={
            "help": f"weights dtype, one of {DTYPE_NAMES}; auto: bf16 autocast with fp32 master "
            "weights where bf16 is fast (bf16 GPU, AVX-512-BF16/AMX CPU), else float32"
        },
    )
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast (fp32 master weights)"})
    overwrite: bool = field(default=False, metadata={"help": "replace a non-empty --out"})
    trust_remote_code: bool = field(default=False, metadata={"help": "run model code from the hub"})
    allow_pickle: bool = field(default=False, metadata={"help": "accept pickle (.bin) weights"})
    field_map: str | None = field(
        default=None, metadata={"help": "rename fields: prompt=question,..."}
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0: train all weights)"})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling α (scale α/r)"})
    lora_targets: str = field(
        default=LORA_TARGETS, metadata={"help": "comma list of module names LoRA adapts"}
    )
    merge_lora: bool = field(
        default=False, metadata={"help": "save the merged model, not the LoRA adapter folder"}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations in backward (less memory)"}
    )
    report_to: str = field(
        default="none",
        metadata={
            "help": f"experiment tracking, one of {REPORT_TO} (tensorboard: events in "
            "<out>.tensorboard/; wandb and mlflow read their usual environment variables)"
        },
    )
    push_to_hub: str | None = field(
        default=None, metadata={"help": "after a successful run, upload --out to this hub repo"}
    )
    hub_private: bool = field(default=False, metadata={"help": "--push-to-hub: a private repo"})
    save_steps: int = field(
        default=0, metadata={"help": "checkpoint every N steps to <out>.checkpoints (0: off)"}
    )
    resume: bool = field(
        default=False, metadata={"help": "continue from the last complete checkpoint"}
    )
    # Plain-text corpora: cut into token windows (QA records are never windowed).
    window_length: int = field(default=256, metadata={"help": "text window length in tokens"})
    window_stride: int | None = field(
        default=None, metadata={"help": "tokens between window starts (None: window length)"}
    )
    short_texts: str = field(
        default="error", metadata={"help": "a text shorter than one window: error | keep"}
    )

    def __post_init__(self):
        for name in ("lr", "epochs", "weight_decay", "warmup_epochs"):
            if not math.isfinite(getattr(self, name)):
                raise TifError(f"{name} must be a finite number, got {getattr(self, name)}")
        checks = [
            (self.lora_r >= 0, f"lora_r must be >= 0, got {self.lora_r}"),
            (self.lora_alpha > 0, f"lora_alpha must be > 0, got {self.lora_alpha}"),
            (bool(self.lora_targets.strip(", ")), "lora_targets must name at least one module"),
            (self.lora_r > 0 or not self.merge_lora, "--merge-lora needs --lora-r > 0"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.epochs > 0, f"epochs must be > 0, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}"),
            (self.max_steps == -1 or self.max_steps >= 1, "max_steps must be >= 1 (or -1)"),
            (self.save_steps >= 0, f"save_steps must be >= 0, got {self.save_steps}"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
            (self.scheduler in SCHEDULERS, f"scheduler must be one of {SCHEDULERS}"),
            (self.step_count in STEP_COUNTS, f"step_count must be one of {STEP_COUNTS}"),
            (self.report_to in REPORT_TO, f"report_to must be one of {REPORT_TO}"),
            (self.max_length >= 8, "max_length must be >= 8"),
            (self.dtype in DTYPE_NAMES, f"dtype must be one of {DTYPE_NAMES}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TifError(message)
        if not self.out:
            raise TifError("--out is required")
        self._check_windows()

    def _check_windows(self) -> None:
        if not 1 <= self.window_length < self.max_length:
            raise TifError(
                f"window_length must be >= 1 and < max_length ({self.max_length}), "
                f"got {self.window_length}"
            )
        stride = self.window_stride
        if stride is not None and not 1 <= stride <= self.window_length:
            raise TifError(f"window_stride must be between 1 and window_length, got {stride}")
        if self.short_texts not in SHORT_TEXTS:
            raise TifError(f"short_texts must be one of {SHORT_TEXTS}, got {self.short_texts!r}")


@dataclass
class FinetuneConfig(TrainConfig):
    data: str = field(
        default="",
        metadata={"help": "QA or text records to fine-tune on; several: comma-separated"},
    )
    epochs: float = field(default=5.0, metadata={"help": "training epochs"})
    warmup_epochs: float = field(default=1.0, metadata={"help": "linear warm-up length in epochs"})
    recall_check: int = field(
        default=8,
        metadata={
            "help": "after training, greedy-answer N training questions and warn when the "
            "answers do not recite the training answers (0: skip)"
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.data_sources():
            raise TifError("--data is required")
        if self.recall_check < 0:
            raise TifError(f"recall_check must be >= 0, got {self.recall_check}")

    def data_sources(self) -> tuple[str, ...]:
        """``--data a.jsonl,b.jsonl`` -> ``("a.jsonl", "b.jsonl")`` (an existing file whose
        name holds a comma is one source)."""
        return data_sources(self.data)


def data_sources(data: str) -> tuple[str, ...]:
    """The input sources named by a ``--data`` value (comma-separated)."""
    if not data or Path(data).exists():
        return (data,) if data else ()
    return tuple(part.strip() for part in data.split(",") if part.strip())


@dataclass
class UnlearnOptions(TrainConfig):
    """``tif unlearn``'s own options; ``UnlearnConfig`` adds the methods' hyperparameters."""

    method: str = field(default="tif", metadata={"help": "unlearning method"})
    forget: str = field(default="", metadata={"help": "forget records (annotated for tif)"})
    retain: str | None = field(default=None, metadata={"help": "retain records"})
    refusals: str | None = field(default=None, metadata={"help": "refusal sentences (idkdpo)"})
    identifier: str | None = field(
        default=None, metadata={"help": "tif: annotate --forget inline with this identifier"}
    )
    eval_every: int | None = field(default=None, metadata={"help": "evaluate every N steps"})
    eval_data_dir: str | None = field(
        default=None, metadata={"help": "TOFU folder for --eval-every"}
    )
    eval_forget_split: str = field(default="forget01", metadata={"help": "TOFU forget split"})
    eval_max_items: int = field(default=40, metadata={"help": "items per eval set"})
    keep_best: str | None = field(default=None, metadata={"help": "METRIC[:min|max] to keep"})
    live_reference: bool = field(default=False, metadata={"help": "keep a frozen reference model"})
    reference_batch_size: int = field(default=8, metadata={"help": "batch size of reference pass"})
    preset: str | None = field(
        default=None, metadata={"help": "paper recipe as defaults: muse | tofu"}
    )

    def __post_init__(self):
        super().__post_init__()
        if not self.forget:
            raise TifError("--forget is required")
        if self.reference_batch_size < 1:
            raise TifError("reference_batch_size must be >= 1")
        if self.eval_every is not None and self.eval_every < 1:
            raise TifError("eval_every must be >= 1")
        if self.keep_best and not self.eval_every:
            raise TifError("--keep-best needs --eval-every")
        if self.eval_max_items < 1:
            raise TifError("eval_max_items must be >= 1")


def _method_option_fields() -> list[tuple]:
    """One optional field per method hyperparameter, named, typed and explained by the methods'
    config classes (``config.methods``); None means "the chosen method's default"."""
    return [
        (name, kind | None, field(default=None, metadata={"help": help}))
        for name, (kind, help) in method_options().items()
    ]


UnlearnConfig = make_dataclass(
    "UnlearnConfig",
    _method_option_fields(),
    bases=(UnlearnOptions,),
    namespace={"__module__": __name__},
)
UnlearnConfig.__doc__ = (
    "Options of ``tif unlearn``: training, inputs, evaluation during training, and one field "
    "per method hyperparameter (derived from ``config.methods``; None: the method's default)."
)
