"""GPU memory of `tif unlearn` / `tif finetune` per GPU, computed from the model's shape.

    python benchmarks/gpu_memory.py            # writes benchmarks/results/gpu_memory.json
    python benchmarks/gpu_memory.py --check    # also measures the activation formula on CPU

What is counted, in bytes (P parameters, N tokens in memory at once = batch x length x
streams: the forget batch and the retain batch are both alive until the backward pass):

- weights: P x 4 (fp32 master weights under bf16 autocast, or float32) or P x 2 (bfloat16);
  under autocast the bf16 copies of the matmul weights live through the step too (P x 2);
- gradients: one per trained parameter, in the weights' dtype;
- AdamW: two states per trained parameter, in the weights' dtype;
- activations saved for the backward pass of a Llama block, per token (h hidden, i MLP, kv
  key/value width, r bytes of the residual stream, m bytes of a matmul input):
  4 r h (input and normalised state of the two RMSNorms) + m c h (the projections' inputs:
  under autocast each of q, k, v, gate, up keeps its own bf16 copy, c = 5; else c = 2)
  + m (2 h + 2 kv + 4 i) (rotated q, attention output, rotated k, v, gate, activation, up,
  product); the attention scores are not kept (flash / memory-efficient SDPA), and the final
  norm adds 2 r h. `--check` measured this on CPU (tiny Llama) against autograd's
  saved bytes (within 2 %). With --gradient-checkpointing only each block's input (r h per token and
  layer) plus one block's full set;
- logits: N x vocab x (the logits in the compute dtype + the float32 copy each per-sample
  logsumexp keeps for backward + its float32 gradient);
- a fixed 1 GiB for the CUDA context, cuBLAS workspaces and allocator slack.

Caching the reference values (before training, `reference_caching`): the whole model on each
GPU (P x 4 under autocast, as loaded), the bf16 logits of one reference batch (8 x 512
tokens x vocab x 2; x 4 in float32) plus one sample's float32 logsumexp input (512 x vocab x 4),
and, under autocast, one weight's bf16 copy at a time (the largest, vocab x hidden x 2): the
cache runs with autocast's weight cache off (before issue 36 it was on, and under no_grad
autocast kept a bf16 copy of every weight until the batch ended: + P x 2, e.g. 15 GiB on 8B;
`--check` measures both on CPU: `caching_check`).
Under DeepSpeed bf16 the weights are loaded in bf16 and cached without autocast (P x 2).
A run's peak is the larger of the caching and the training peaks.

ZeRO-3 (DeepSpeed bf16, as examples/accelerate_deepspeed_zero3.yaml) keeps 16 bytes per
parameter sharded over the GPUs (bf16 weights 2, bf16 gradients 2, fp32 master weights and
AdamW states 12) plus the parameters it gathers for the layers being computed (at most its
default stage3_max_live_parameters, 1e9, in bf16); before training, every process holds the
whole model once to cache the reference values, in bf16. LoRA trains
r x (in + out) parameters per adapted projection (fp32, as peft keeps them) over a frozen
base. These are estimates for planning (± 20 %), not measurements on a GPU; `--check`
measures the saved activations of a tiny Llama on CPU against the formula.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

GIB = 2**30
OVERHEAD_GIB = 1.0
MAX_LIVE_PARAMETERS = 1e9  # DeepSpeed's stage3_max_live_parameters default
RESULTS = Path(__file__).parent / "results" / "gpu_memory.json"


@dataclass(frozen=True)
class Arch:
    params: float
    layers: int
    hidden: int
    intermediate: int
    kv: int  # key/value heads x head dim
    vocab: int


ARCHS = {  # from the models' config.json
    "Llama-3.2-1B": Arch(1.236e9, 16, 2048, 8192, 512, 128256),
    "Llama-2-7b": Arch(6.738e9, 32, 4096, 11008, 4096, 32000),
    "Llama-3.1-8B": Arch(8.030e9, 32, 4096, 14336, 1024, 128256),
}
# bytes: (weights/grads/states, residual stream, matmul input, logits, autocast weight copy)
PRECISION = {
    "bf16-autocast": (4, 4, 2, 2, 2),
    "bfloat16": (2, 2, 2, 2, 0),
    "float32": (4, 4, 4, 4, 0),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    model: str
    precision: str = "bf16-autocast"
    batch: int = 8
    length: int = 512
    streams: int = 2  # forget + retain
    checkpointing: bool = False
    lora_r: int = 0
    gpus: int = 1  # ZeRO-3 shards over this many
    reference_batch: int = 8  # --reference-batch-size


def arch_from_config(config, params: float) -> Arch:
    """The shape ``Arch`` of a transformers Llama-style config with ``params`` parameters."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return Arch(
        float(params),
        config.num_hidden_layers,
        config.hidden_size,
        config.intermediate_size,
        kv_heads * head_dim,
        config.vocab_size,
    )


def lora_params(arch: Arch, r: int) -> float:
    """r x (in + out) for q, k, v, o, gate, up, down in every layer."""
    h, i, kv = arch.hidden, arch.intermediate, arch.kv
    per_layer = (h + h) + 2 * (h + kv) + (h + h) + 2 * (h + i) + (i + h)
    return float(r * per_layer * arch.layers)


def block_bytes_per_token(arch: Arch, residual: int, matmul: int, autocast: bool) -> int:
    h, i, kv = arch.hidden, arch.intermediate, arch.kv
    copies = 5 if autocast else 2
    return 4 * residual * h + matmul * (copies * h + 2 * h + 2 * kv + 4 * i)


def activation_bytes(arch: Arch, s: Scenario, residual: int, matmul: int) -> float:
    tokens = s.batch * s.length * s.streams
    block = block_bytes_per_token(arch, residual, matmul, s.precision == "bf16-autocast")
    final_norm = 2 * residual * arch.hidden
    if s.checkpointing:
        return tokens * (arch.layers * residual * arch.hidden + block + final_norm)
    return tokens * (arch.layers * block + final_norm)


def zero3_bytes(arch: Arch, gpus: int) -> dict[str, float]:
    shard = arch.params / gpus
    gathered = min(arch.params, MAX_LIVE_PARAMETERS) * 2
    return {"weights": shard * 2 + gathered, "gradients": shard * 2, "adamw": shard * 12}


def state_bytes(arch: Arch, s: Scenario, width: int, cast: int) -> dict[str, float]:
    """Weights, gradients and AdamW states (sharded over ``gpus`` under ZeRO-3)."""
    if s.gpus > 1:
        return zero3_bytes(arch, s.gpus)
    if s.lora_r:
        trained = lora_params(arch, s.lora_r)
        return {
            "weights": arch.params * width + trained * 4 + arch.params * cast,
            "gradients": trained * 4,
            "adamw": trained * 8,
        }
    return {
        "weights": arch.params * (width + cast),
        "gradients": arch.params * width,
        "adamw": 2 * arch.params * width,
    }


def caching_bytes(arch: Arch, s: Scenario, width: int, logit: int, cast: int) -> float:
    """Peak while the reference values are cached: whole weights (bf16 under ZeRO-3), one
    reference batch of logits and one sample's float32 logits, one weight's autocast copy."""
    if s.gpus > 1:  # DeepSpeed bf16: the weights are cast to bf16 first, no autocast
        width, logit, cast = 2, 2, 0
    logits = s.reference_batch * s.length * arch.vocab * logit + s.length * arch.vocab * 4
    return arch.params * width + logits + cast * arch.vocab * arch.hidden


def estimate(s: Scenario, arch: Arch | None = None) -> dict:
    """GiB per GPU of each part, the training peak ``total``, the ``reference_caching`` peak
    and ``peak`` (the larger); ``bytes`` holds both peaks unrounded, without the overhead."""
    arch = arch or ARCHS[s.model]
    width, residual, matmul, logit, cast = PRECISION[s.precision]
    parts = state_bytes(arch, s, width, cast)
    parts["activations"] = activation_bytes(arch, s, residual, matmul)
    tokens = s.batch * s.length * s.streams
    parts["logits"] = tokens * arch.vocab * (logit + 4 + 4)
    training, caching = sum(parts.values()), caching_bytes(arch, s, width, logit, cast)
    gib = {k: round(v / GIB, 1) for k, v in parts.items()}
    gib["overhead"] = OVERHEAD_GIB
    gib["total"] = round(training / GIB + OVERHEAD_GIB, 1)
    gib["reference_caching"] = round(caching / GIB + OVERHEAD_GIB, 1)
    gib["peak"] = max(gib["total"], gib["reference_caching"])
    peaks = {"training": training, "reference_caching": caching}
    return {**asdict(s), "gib_per_gpu": gib, "bytes": peaks}


ONE_B = Scenario("1B full, batch 8+8, 512 tokens", "Llama-3.2-1B")
ONE_B_CKPT = replace(
    ONE_B, name="1B full, batch 8+8, 512 tokens, checkpointing", checkpointing=True
)
LORA = dict(precision="bfloat16", checkpointing=True, lora_r=16)
EIGHT_B = Scenario("8B LoRA r16, bf16 weights, batch 4+4, checkpointing", "Llama-3.1-8B", batch=4)
SCENARIOS = [
    ONE_B,
    ONE_B_CKPT,
    replace(ONE_B_CKPT, name="1B full, batch 4+4, 256 tokens, checkpointing", batch=4, length=256),
    replace(ONE_B, name="1B LoRA r16, bf16 weights, batch 8+8, checkpointing", **LORA),
    replace(
        EIGHT_B,
        name="7B (Llama-2) LoRA r16, bf16 weights, batch 4+4, checkpointing",
        model="Llama-2-7b",
        **LORA,
    ),
    replace(EIGHT_B, **LORA),
    replace(ONE_B, name="1B fine-tune (one stream), batch 8, 512 tokens", streams=1),
    replace(
        EIGHT_B, name="8B LoRA fine-tune (one stream), batch 4, checkpointing", streams=1, **LORA
    ),
    replace(
        EIGHT_B,
        name="8B full, ZeRO-3 on 4 GPUs, batch 4+4, checkpointing",
        checkpointing=True,
        gpus=4,
    ),
    replace(
        EIGHT_B,
        name="8B full, ZeRO-3 on 8 GPUs, batch 4+4, checkpointing",
        checkpointing=True,
        gpus=8,
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="measure the formula on CPU")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = {
        "assumptions": __doc__.split("What is counted", 1)[1].strip(),
        "architectures": {name: asdict(arch) for name, arch in ARCHS.items()},
        "scenarios": [estimate(s) for s in SCENARIOS],
    }
    if args.check:
        from gpu_memory_check import caching_copies_check, check_formula

        result["check"] = check_formula()
        result["caching_check"] = caching_copies_check()
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for row in result["scenarios"]:
        gib = row["gib_per_gpu"]
        print(f"{gib['total']:7.1f} GiB ({gib['reference_caching']:5.1f} caching)  {row['name']}")


if __name__ == "__main__":
    main()
