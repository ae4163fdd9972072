"""Benchmark: training-step speed and peak memory of every method on SmolLM2-135M.

Each row runs in its own subprocess (so peak RSS is that row's), on the same batches: TOFU
forget01 with the paper's GPT-4o UW annotations, each forget sample paired with a retain
sample (TOFU retain, first 160 rows), batch 4, AdamW. Steps: 2 warm-up + N measured (median).
Rows: a plain forward+backward of the same forget+retain batch (the practical ceiling), every
method with its cached reference, TIF/NPO with a live reference model, TIF without retain.
Also: padding waste with/without length grouping, the matmul FLOP/s of the machine, and pure
bf16 update loss at lr 1e-5. Not a test: run `python benchmarks/speed.py`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import machine, median, write_results

ANNOTATIONS = (
    Path(__file__).resolve().parents[2] / "shared/data/tofu-uw-annotations/forget01.llm.jsonl"
)
ROWS = [
    "plain",
    "ga",
    "graddiff",
    "npo",
    "npo-live",
    "simnpo",
    "idkdpo",
    "tif",
    "tif-live",
    "tif-noretain",
    "tif-live-noretain",
]
N_PARAMS = 134_515_008  # SmolLM2-135M


def build_batches(tokenizer, model, method, live: bool, use_retain: bool, n_batches: int):
    from tif_unlearn.data.batches import UnlearnCollator, UnlearnDataset
    from tif_unlearn.data.loaders import load_records, load_refusals
    from tif_unlearn.methods import METHODS
    from tif_unlearn.train.inputs import idk_records
    from tif_unlearn.train.streams import cache_reference, encode_all

    forget = load_records(str(ANNOTATIONS))
    retain = load_records("tofu:retain90")[:160] if use_retain else None
    streams = {"forget": encode_all(tokenizer, forget, 512)}
    if retain:
        streams["retain"] = encode_all(tokenizer, retain, 512)
    if METHODS.get(method) and METHODS[method].uses_idk:
        streams["idk"] = encode_all(tokenizer, idk_records(forget, load_refusals(), 0), 512)
    if method in METHODS and not live:
        config = METHODS[method].config_cls()
        for name, kind in METHODS[method].reference(config).items():
            streams[name] = cache_reference(
                model, streams[name], kind, pad_token_id=tokenizer.pad_token_id
            )
    dataset = UnlearnDataset(streams["forget"], streams.get("retain"), streams.get("idk"), seed=0)
    collate = UnlearnCollator(tokenizer.pad_token_id)
    order = sorted(range(len(dataset)), key=lambda i: dataset.lengths()[i])
    return [collate([dataset[i] for i in order[k * 4 : k * 4 + 4]]) for k in range(n_batches)]


def useful_tokens(batch) -> int:
    return int(sum(stream["attention_mask"].sum() for stream in batch.values()))


def plain_loss(model, batch):
    from tif_unlearn import losses
    from tif_unlearn.methods.base import stream_token_logps

    total = 0
    for stream in batch.values():
        logps, mask = stream_token_logps(model, stream)
        total = total + losses.nll_loss(logps, mask)
    return total


def run_row(row: str, steps: int) -> dict:
    from tif_unlearn.methods import METHODS
    from tif_unlearn.methods.base import reference_values
    from tif_unlearn.models import load_model
    from tif_unlearn.train.streams import frozen_copy

    method = row.split("-")[0]
    live, use_retain = "-live" in row, "noretain" not in row and method != "ga"
    bf16 = row.endswith("-bf16")  # bf16 autocast over fp32 weights, as --bf16 trains
    model, tokenizer = load_model("smollm2-135m")
    batches = build_batches(tokenizer, model, method, live, use_retain, steps + 2)
    reference = frozen_copy(model) if live else None
    config = METHODS[method].config_cls() if method in METHODS else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    model.train()
    times = []
    for batch in batches:
        start = time.perf_counter()
        if reference is not None:
            for name, kind in METHODS[method].reference(config).items():
                batch[name].update(reference_values(reference, batch[name], kind))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = (
                plain_loss(model, batch)
                if method == "plain"
                else METHODS[method].compute_loss(model, batch, config)[0]
            )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    measured = times[2:]
    tokens = [useful_tokens(b) for b in batches[2:]]
    padded = [sum(int(s["attention_mask"].numel()) for s in b.values()) for b in batches[2:]]
    step = median(measured)
    return {
        "row": row,
        "median_step_s": round(step, 3),
        "steps_s": [round(t, 3) for t in measured],
        "useful_tokens_per_step": median(tokens),
        "padded_tokens_per_step": median(padded),
        "useful_tokens_per_s": round(
            median([t / s for t, s in zip(tokens, measured, strict=True)]), 1
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def matmul_gflops(dtype, size=2048, repeats=3) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return round(2 * size**3 * repeats / (time.perf_counter() - start) / 1e9, 2)


def roofline(flop_count: float, wall_s: float) -> dict:
    """Achieved GFLOP/s of ``flop_count`` in ``wall_s`` against this machine's fp32 matmul rate."""
    achieved = flop_count / wall_s / 1e9
    bound = matmul_gflops(torch.float32)
    return {"achieved_gflops": round(achieved, 2), "matmul_gflops": bound,
            "fraction_of_bound": round(achieved / bound, 3)}  # fmt: skip


def bf16_update_loss() -> dict:
    """Share of weights that an AdamW step at lr 1e-5 leaves unchanged, fp32 vs pure bf16."""
    from tif_unlearn.models import load_model

    result = {}
    for dtype in ("float32", "bfloat16"):
        model, _ = load_model("smollm2-135m", dtype=dtype)
        weight = model.model.layers[0].mlp.down_proj.weight
        before = weight.detach().clone()
        weight.grad = torch.randn_like(weight)
        torch.optim.AdamW([weight], lr=1e-5, weight_decay=0.0).step()
        result[dtype] = round(float((weight.detach() == before).float().mean()), 4)
    return result


def padding_waste(group: bool) -> float:
    from tif_unlearn.data.batches import LengthGroupedSampler
    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.models import load_model
    from tif_unlearn.train.streams import encode_all

    _, tokenizer = load_model("smollm2-135m")
    records = load_records(str(ANNOTATIONS)) + load_records("tofu:retain90")[:160]
    lengths = [len(e["input_ids"]) for e in encode_all(tokenizer, records, 512)]
    order = (
        list(LengthGroupedSampler(lengths, 4)) if group else torch.randperm(len(lengths)).tolist()
    )
    padded = sum(
        max(lengths[i] for i in order[k : k + 4]) * len(order[k : k + 4])
        for k in range(0, len(order), 4)
    )
    return round(1 - sum(lengths) / padded, 4)


def run_rows(rows: list[str], steps: int) -> dict:
    """Each row in its own subprocess (its own peak RSS)."""
    results = {}
    for row in rows:
        print(f"row {row} ...", flush=True)
        done = subprocess.run(
            [sys.executable, __file__, "--row", row, "--steps", str(steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[row] = json.loads(done.stdout.strip().splitlines()[-1])
        print(results[row], flush=True)
    return results


def precision_rows(steps: int) -> None:
    """A TIF step in float32 and under bf16 autocast on this machine, the matmul rates, and
    what ``--dtype auto`` picks here: appended to speed.json's ``precision_by_machine``."""
    from tif_unlearn.train.precision import cpu_has_fast_bf16

    rows = run_rows(["tif", "tif-bf16"], steps)
    entry = {
        "machine": machine(),
        "matmul_gflops": {
            "fp32": matmul_gflops(torch.float32),
            "bf16": matmul_gflops(torch.bfloat16, size=1024, repeats=3),
        },
        "rows": rows,
        "bf16_step_speedup": round(
            rows["tif"]["median_step_s"] / rows["tif-bf16"]["median_step_s"], 3
        ),
        "dtype_auto_picks": "bf16 autocast" if cpu_has_fast_bf16() else "float32",
    }
    path = Path(__file__).resolve().parent / "results" / "speed.json"
    results = json.loads(path.read_text())
    results.setdefault("precision_by_machine", []).append(entry)
    write_results("speed.json", results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=5, help="measured steps (1 to 8)")
    parser.add_argument(
        "--precision", action="store_true", help="only the fp32 vs bf16 TIF rows (appended)"
    )
    args = parser.parse_args()
    if not 1 <= args.steps <= 8:  # 2 warm-up + 8 steps of batch 4 use all 40 forget01 samples
        parser.error("--steps must be between 1 and 8 (forget01 holds 10 batches of 4)")
    if args.row:
        print(json.dumps(run_row(args.row, args.steps)))
        return
    if args.precision:
        precision_rows(args.steps)
        return
    results = {
        "machine": machine(),
        "model": "smollm2-135m, fp32 weights, batch 4 (+4 retain)",
        "matmul_gflops": {
            "fp32": matmul_gflops(torch.float32),
            "bf16": matmul_gflops(torch.bfloat16, size=512, repeats=1),
        },
    }
    rows = run_rows(ROWS, args.steps)
    results["rows"] = rows
    plain = rows["plain"]["useful_tokens_per_s"]
    results["share_of_plain"] = {
        r: round(v["useful_tokens_per_s"] / plain, 3) for r, v in rows.items()
    }
    results["live_over_cached_step_time"] = {
        "tif (with retain)": round(
            rows["tif-live"]["median_step_s"] / rows["tif"]["median_step_s"], 3
        ),
        "tif (no retain)": round(
            rows["tif-live-noretain"]["median_step_s"] / rows["tif-noretain"]["median_step_s"], 3
        ),
        "npo (with retain)": round(
            rows["npo-live"]["median_step_s"] / rows["npo"]["median_step_s"], 3
        ),
    }
    flops = (
        6
        * N_PARAMS
        * rows["plain"]["padded_tokens_per_step"]
        / rows["plain"]["median_step_s"]
        / 1e9
    )
    results["plain_step_share_of_fp32_matmul_bound"] = round(
        flops / results["matmul_gflops"]["fp32"], 3
    )
    results["padding_waste"] = {
        "length_grouped": padding_waste(True),
        "random": padding_waste(False),
    }
    results["unchanged_weights_after_one_adamw_step_lr_1e-5"] = bf16_update_loss()
    write_results("speed.json", results)


if __name__ == "__main__":
    main()
