"""`tif identify`: annotate forget records with unwanted-word spans, or score annotations."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TifError
from .options import Command, Flags

log = logging.getLogger("tif_unlearn")
MAX_FAILURES_SHOWN = 20


def _flag(help: str, default=None):
    return field(default=default, metadata={"help": help})


@dataclass
class IdentifyArgs:
    """The flags of ``tif identify``."""

    identifier: str = _flag(
        "annotations | llm | masked-lm | ner | phrases | learned | frequency | contrast |"
        " combined (default: phrases; benchmarks/results/identifiers.json)",
        "phrases",
    )
    data: str | None = _flag("forget records (.json/.jsonl, tofu:SPLIT, hf://...)")
    out: str | None = _flag("annotated JSON Lines output")
    html: str | None = _flag("also write a self-contained HTML page of the annotations")
    field_map: str | None = _flag("rename fields: prompt=question,response=answer")
    model: str | None = _flag("llm: local chat model; contrast: the target model")
    reference: str | None = _flag("contrast: the reference (base) model")
    api_base: str | None = _flag("llm: OpenAI-compatible endpoint (key from OPENAI_API_KEY)")
    api_model: str | None = _flag("llm: model name at the endpoint")
    masked_lm_model: str | None = _flag("masked-lm: fill-mask model folder or hub id")
    learned_model: str | None = _flag("learned: a model saved with --save (default: packaged)")
    train: str | None = _flag("learned: fit a model on these annotated records first")
    save: str | None = _flag("learned: write the model fitted with --train to this file")
    threshold: float | None = _flag("frequency: Zipf threshold; contrast: nats")
    device: str = _flag(
        "llm (local model) and contrast: auto (a GPU when visible) | cpu | cuda[:N]", "auto"
    )
    dtype: str = _flag(
        "llm (local model) and contrast: weights dtype, auto (bfloat16 on a bf16 GPU, else "
        "float32) | float32 | bfloat16 | float16",
        "auto",
    )
    members: str = _flag("combined: identifier names", "ner,frequency")
    mode: str = _flag("combined: union | intersection | vote", "union")
    score: bool = _flag("score --pred against --gold instead", False)
    gold: str | None = _flag("--score: gold annotated records")
    pred: str | None = _flag("--score: predicted annotated records")


def model_placement(args: IdentifyArgs) -> dict[str, str]:
    """``--device`` / ``--dtype`` decided for this machine (an identifier that runs a model)."""
    import torch

    from ..devices import pick_device
    from ..train.precision import EVAL_DTYPES, eval_dtype

    if args.dtype not in EVAL_DTYPES:
        raise TifError(f"--dtype must be one of {', '.join(EVAL_DTYPES)}, got {args.dtype!r}")
    device = pick_device(args.device)
    return {"device": device, "dtype": eval_dtype(args.dtype, torch.device(device))}


def identifier_options(args: IdentifyArgs) -> dict:
    """Turn command-line options into the chosen identifier's keyword arguments."""
    name, options = args.identifier, {}
    if name == "llm":
        if args.api_base:
            options.update(api_base=args.api_base, api_model=args.api_model)
        else:
            options["model_name"] = args.model or "smollm2-135m"
            options.update(model_placement(args))
    elif name == "contrast":
        if not (args.model and args.reference):
            raise TifError("the contrast identifier needs --model (target) and --reference")
        options.update(target=args.model, reference=args.reference, **model_placement(args))
    elif name == "masked-lm" and args.masked_lm_model:
        options["model_name"] = args.masked_lm_model
    elif name == "learned" and args.learned_model:
        options["model"] = args.learned_model
    elif name == "combined":
        options.update(
            members=[m.strip() for m in args.members.split(",") if m.strip()], mode=args.mode
        )
    if args.threshold is not None:
        if name not in ("frequency", "contrast"):
            raise TifError("--threshold applies to the frequency and contrast identifiers")
        options["threshold"] = args.threshold
    return options


def report_failures(result, records) -> None:
    for index, reason in result.failures[:MAX_FAILURES_SHOWN]:
        where = records[index].source or f"record {index + 1}"
        log.warning("%s: not annotated: %s", where, reason)
    hidden = len(result.failures) - MAX_FAILURES_SHOWN
    if hidden > 0:
        log.warning("... and %d more failures", hidden)


def run_identify(args: IdentifyArgs, learned_model=None) -> tuple[list, object]:
    from ..data.loaders import load_records, parse_field_map
    from ..identify import IDENTIFIERS, identify

    if args.identifier not in IDENTIFIERS:
        raise TifError(
            f"unknown identifier {args.identifier!r}; choose one of: {', '.join(IDENTIFIERS)}"
        )
    options = identifier_options(args)
    if learned_model is not None:
        options["model"] = learned_model
    records = load_records(args.data, field_map=parse_field_map(args.field_map))
    options["progress"] = sys.stderr.isatty()  # no bar in a log (it runs into what follows)
    result = identify(args.identifier, records, **options)
    report_failures(result, records)
    if result.n_ok == 0:
        raise TifError(
            f"no record could be annotated by '{args.identifier}' ({len(records)} failed)"
        )
    return result.annotated(), result


def check_learned_options(args: IdentifyArgs) -> None:
    used = [
        f"--{n.replace('_', '-')}" for n in ("learned_model", "train", "save") if getattr(args, n)
    ]
    if used and args.identifier != "learned":
        raise TifError(f"{', '.join(used)} apply to --identifier learned only")
    if args.save and not args.train:
        raise TifError("--save writes the model fitted with --train: give --train GOLD.jsonl")
    if args.train and args.learned_model:
        raise TifError("give either --train (fit a new model) or --learned-model, not both")
    if args.train and not (args.save or args.data):
        raise TifError("--train needs --save FILE (or --data and --out to use the model at once)")
    if args.train and args.data and not args.out:
        raise TifError("tif identify needs --data and --out (or --score --gold --pred)")
    if args.save and Path(args.save).is_dir():
        raise TifError(f"{args.save} is a folder; give a file path for --save")


def train_learned(args: IdentifyArgs):
    """Fit a learned model on ``--train`` and write it to ``--save``; return it."""
    from ..data.loaders import load_records
    from ..identify.learned import fit_learned

    gold = load_records(args.train)
    model = fit_learned(gold)
    model.trained_on["file"] = Path(args.train).name
    if args.save:
        model.save(args.save)
    where = f"; written to {args.save}" if args.save else ""
    print(f"learned: fitted on {len(gold)} annotated records{where}")
    return model


def cmd_identify(namespace: argparse.Namespace) -> int:
    args = FLAGS.build(namespace)
    if args.score:
        return cmd_score(args)
    check_learned_options(args)
    trained = train_learned(args) if args.train else None
    if trained is not None and not args.data:
        return 0
    if not args.data or not args.out:
        raise TifError("tif identify needs --data and --out (or --score --gold --pred)")
    out, html = Path(args.out), Path(args.html) if args.html else None
    for path in filter(None, (out, html)):
        if path.is_dir():
            raise TifError(f"{path} is a folder; give a file path")
    annotated, result = run_identify(args, trained)
    from ..data.annotations import write_annotated

    write_annotated(annotated, out)
    if html is not None:
        from ..report.spans_html import render_html

        html.write_text(
            render_html({args.identifier: annotated}, "Unwanted words"), encoding="utf-8"
        )
    n = len(result.records)
    where = ""
    if args.identifier == "contrast" or (args.identifier == "llm" and not args.api_base):
        where = " on {device} in {dtype}".format(**model_placement(args))
    print(
        f"{args.identifier}: annotated {result.n_ok}/{n} records in {result.seconds:.1f} s"
        f"{where} ({len(result.failures)} failed); written to {out}"
    )
    return 0


def cmd_score(args: IdentifyArgs) -> int:
    from ..data.loaders import load_records
    from ..identify.score import score_spans

    if not (args.gold and args.pred):
        raise TifError("--score needs --gold and --pred")
    scores = score_spans(load_records(args.gold), load_records(args.pred))
    print(json.dumps(scores, indent=2))
    return 0


FLAGS = Flags(IdentifyArgs)
IDENTIFY = Command("identify", "mark the unwanted words of forget records", cmd_identify, (FLAGS,))
