"""The options of the TOFU, MUSE and QA evaluators: one default, one check and (for the fields
the ``tif eval`` commands set) one help text per value.

No torch or numpy here: the command line builds its ``tif eval`` flags from these classes
(``cli/options.py``) before any model work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.tofu import TOFU_SPLITS
from ..errors import TifError

CORPORA = {"news": "MUSE-News", "books": "MUSE-Books"}


@dataclass
class TofuEvalOptions:
    data_dir: str = field(default="auto", metadata={"help": "TOFU folder, 'hub', or auto"})
    forget_split: str = field(
        default="forget01", metadata={"help": "forget01 | forget05 | forget10"}
    )
    max_items: int | None = field(  # the original TOFU logs use 300
        default=None, metadata={"help": "evaluate the first N items of each set"}
    )
    batch_size: int = field(default=16, metadata={"help": "scoring batch size"})
    # on a CPU a decoding step costs little more for 64 rows than for 32 (the weights are read
    # once per step) and early exit keeps the batch full: with the in-place KV cache
    # (kv_buffer.py) 64 rows took 30.1 CPU-s where 32 took 44.6 (bf16; fp32 41.4 vs 58.4;
    # benchmarks/results/generation_ab.json); each row holds a KV cache as wide as the batch's
    # longest row (SmolLM2-135M: about 12 MB at 260 tokens in fp32): 64 rows peak ~0.4 GB above 32
    generate_batch_size: int = field(
        default=64, metadata={"help": "greedy answers decoded at once (memory: KV cache per row)"}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "greedy answer length"})
    sets: tuple[str, ...] = ("forget", "retain", "real_authors", "world_facts")
    retain_questions: int | None = None  # keep only the first N retain items (mini protocols)
    utility_items: int | None = None  # cap the retain / real-author / world-fact sets only

    def __post_init__(self):
        if not self.forget_split.startswith("forget"):
            raise TifError(f"--forget-split must be forgetXX, got {self.forget_split!r}")
        if f"{self.forget_split}_perturbed" not in TOFU_SPLITS:
            choices = ", ".join(
                s.removesuffix("_perturbed")
                for s in TOFU_SPLITS
                if s.startswith("forget") and s.endswith("_perturbed")
            )
            raise TifError(f"--forget-split must be one of {choices}, got {self.forget_split!r}")
        if self.max_items is not None and self.max_items < 1:
            raise TifError("--max-items must be >= 1")
        if min(self.batch_size, self.generate_batch_size, self.max_new_tokens) < 1:
            raise TifError("--batch-size, --generate-batch-size and --max-new-tokens must be >= 1")


@dataclass
class MuseEvalOptions:
    data_dir: str = field(default="auto", metadata={"help": "MUSE folder, 'hub', or auto"})
    corpus: str = field(default="news", metadata={"help": "news | books"})
    max_items: int | None = field(default=None, metadata={"help": "first N items of each set"})
    batch_size: int = field(default=16, metadata={"help": "batch size"})
    retain_auc: float | None = field(  # for PrivLeak
        default=None, metadata={"help": "the retrained model's Min-40% AUC"}
    )
    verbmem_new_tokens: int = 128
    knowmem_new_tokens: int = 32
    max_length: int = 2048  # tokens kept of each privleak text / verbmem prompt (from the end)

    def __post_init__(self):
        if self.corpus not in CORPORA:
            raise TifError(f"--corpus must be one of {', '.join(CORPORA)}")
        if self.max_items is not None and self.max_items < 1:
            raise TifError("--max-items must be >= 1")
        if self.retain_auc is not None and not 0 < self.retain_auc < 1:
            raise TifError("--retain-auc must be in (0, 1)")


@dataclass
class QAEvalOptions:
    identifier: str = field(
        default="phrases", metadata={"help": "marks UW in forget records without annotation"}
    )
    leak_samples: int = field(default=8, metadata={"help": "N of the best-of-N leak; 0: none"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    format_shift: bool = field(  # the flag is --no-format-shift
        default=True, metadata={"help": "skip the questions in other forms"}
    )
    batch_size: int = field(default=16, metadata={"help": "batch size"})
    max_new_tokens: int = field(default=64, metadata={"help": "greedy and sampled answer length"})
    max_length: int = 512  # tokens kept of each scored example
    window_length: int = field(default=128, metadata={"help": "tokens per window of a text record"})
    min_k: float = 0.4
    dtype: str = "float32"  # weights dtype of the evaluated models (the CLI resolves auto)
    device: str = "cpu"  # where they run (the CLI resolves --device auto)

    def __post_init__(self):
        checks = {
            "--leak-samples must be >= 0": self.leak_samples >= 0,
            "--temperature must be > 0": self.temperature > 0,
            "--batch-size must be >= 1": self.batch_size >= 1,
            "--max-new-tokens must be >= 1": self.max_new_tokens >= 1,
            "--window-length must be >= 2": self.window_length >= 2,
        }
        for message, ok in checks.items():
            if not ok:
                raise TifError(message)
        from ..identify import IDENTIFIERS

        if self.identifier not in IDENTIFIERS:
            names = ", ".join(IDENTIFIERS)
            raise TifError(f"unknown identifier {self.identifier!r}; choose one of: {names}")


@dataclass
class QAEvalFiles:
    model: str = field(metadata={"help": "model to evaluate"})
    forget: str = field(metadata={"help": "forget records (.json/.jsonl; QA or text)"})
    retain: str | None = field(default=None, metadata={"help": "retain records (utility)"})
    holdout: str | None = field(
        default=None, metadata={"help": "records never trained on (membership inference)"}
    )
    reference: str | None = field(
        default=None, metadata={"help": "the model before unlearning (adds before and change)"}
    )
    utility: str = field(
        default="builtin",
        metadata={
            "help": "held-out QA for utility outside the retain set: builtin (general knowledge "
            "shipped with tif), a .json/.jsonl file, or none (default: builtin)"
        },
    )
