#!/usr/bin/env bash
# GPU smoke test: about 2 minutes on one GPU with a 1B model. Each tif command runs a few
# steps on CUDA; the script stops with a non-zero exit code at the first failure.
#
#   scripts/gpu_smoke.sh                          # meta-llama/Llama-3.2-1B-Instruct (gated:
#                                                 #   HF_TOKEN or `hf auth login` first)
#   MODEL=/models/Llama-3.2-1B-Instruct scripts/gpu_smoke.sh   # a local folder, offline
#
# TOFU comes from ../shared/data/tofu, $TIF_TOFU_DIR, or the hub. Outputs: $OUT (default
# runs/gpu-smoke), replaced on every run. Steps: finetune (the "target" model), identify
# --identifier contrast (target vs base), unlearn with TIF (full weights, bf16 autocast),
# unlearn with LoRA + gradient checkpointing, eval tofu; then checks that each ran on CUDA.
# DEVICE=cpu runs the same steps on the CPU (the test suite does, with a tiny model).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-meta-llama/Llama-3.2-1B-Instruct}
OUT=${OUT:-runs/gpu-smoke}
read -r -a TIF <<< "${TIF:-tif}"  # e.g. TIF="python -m tif_unlearn.cli"
PYTHON=${PYTHON:-python}
STEPS=${STEPS:-8}
DEVICE=${DEVICE:-cuda}

step() {
    local name=$1 start=$SECONDS
    shift
    echo "== $name: $*"
    if ! "$@"; then
        echo "gpu_smoke: FAILED at $name" >&2
        exit 1
    fi
    echo "== $name: ok ($((SECONDS - start)) s)"
}

if [ "$DEVICE" = cuda ]; then
    "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "gpu_smoke: no CUDA device")'
fi
rm -rf "$OUT" && mkdir -p "$OUT"
train=(--max-steps "$STEPS" --batch-size 4 --lr 1e-5 --warmup-epochs 0)

step finetune "${TIF[@]}" finetune --model "$MODEL" --data tofu:forget01 "${train[@]}" \
    --out "$OUT/target"
step identify "${TIF[@]}" identify --identifier contrast --model "$OUT/target" --reference "$MODEL" \
    --data tofu:forget01 --out "$OUT/forget01.uw.jsonl"
step unlearn "${TIF[@]}" unlearn --model "$OUT/target" --method tif --forget "$OUT/forget01.uw.jsonl" \
    --retain tofu:retain99 "${train[@]}" --out "$OUT/tif"
step unlearn-lora "${TIF[@]}" unlearn --model "$OUT/target" --method tif \
    --forget "$OUT/forget01.uw.jsonl" --retain tofu:retain99 "${train[@]}" \
    --lora-r 8 --gradient-checkpointing --lr 1e-4 --out "$OUT/tif-lora"
step eval "${TIF[@]}" eval tofu --model "$OUT/tif" --forget-split forget01 --max-items 20 \
    --out "$OUT/tif.json"
step eval-lora "${TIF[@]}" eval tofu --model "$OUT/tif-lora" --forget-split forget01 \
    --max-items 10 --out "$OUT/tif-lora.json"

step checks "$PYTHON" - "$OUT" "$DEVICE" <<'EOF'
import json, math, sys
from pathlib import Path

out, device = Path(sys.argv[1]), sys.argv[2]
for run in ("target", "tif", "tif-lora"):
    record = json.loads((out / run / "tif_run.json").read_text())
    assert device in record["precision"], f"{run} did not train on {device}: {record['precision']}"
    losses = [e["loss"] for e in record["log"] if "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses), f"{run}: losses {losses}"
for name in ("tif.json", "tif-lora.json"):
    results = json.loads((out / name).read_text())
    assert results.get("device", "").startswith(device), f"{name}: on {results.get('device')}"
    assert math.isfinite(results["summary"]["model_utility"]), name
annotated = [json.loads(line) for line in (out / "forget01.uw.jsonl").read_text().splitlines()]
assert annotated, "the contrast identifier wrote no records"
print(f"checks passed: {len(annotated)} records annotated, 3 runs and 2 evaluations on {device}")
EOF
echo "gpu_smoke: all steps passed ($SECONDS s)"
