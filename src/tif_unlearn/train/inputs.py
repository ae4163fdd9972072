"""A run's input records, loaded and validated before any model is: forget (annotated when
the method needs spans, or annotated here by ``--identifier``), retain and refusal pairs, with
plain texts cut into token windows."""

from __future__ import annotations

import logging

import torch

from ..config.schema import TrainConfig, UnlearnConfig
from ..data.loaders import load_records, load_refusals, parse_field_map
from ..data.records import QARecord, TextRecord
from ..data.windows import window_records
from ..errors import DataError, TifError
from ..models import load_tokenizer
from .distributed import run_on_main

log = logging.getLogger("tif_unlearn")


def require_annotations(records, source: str) -> None:
    for record in records:
        if record.unwanted_spans is None:
            raise DataError(
                "record has no unwanted-word annotation (unwanted_spans); "
                "annotate the forget set with `tif identify` first",
                path=record.source or source,
            )


def idk_records(forget, refusals: list[str], seed: int) -> list[QARecord]:
    """Pair each forget question with a refusal drawn at random (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(refusals), (len(forget),), generator=generator).tolist()
    return [QARecord(r.question, refusals[i]) for r, i in zip(forget, picks, strict=True)]


def identify_inline(name: str, records: list) -> list:
    """Annotate forget records with an identifier's default options; drop the failures."""
    from ..identify import identify

    if name == "contrast":
        raise TifError("the contrast identifier needs two models: run `tif identify` first")
    result = identify(name, records)
    for index, reason in result.failures:
        log.warning("%s: not annotated by %s (%s): left out", records[index].source, name, reason)
    if result.n_ok == 0:
        raise TifError(f"no forget record could be annotated by '{name}'")
    return result.annotated()


def hub_access(config: TrainConfig) -> dict:
    """``--revision`` and ``--token`` as keyword arguments of ``load_model`` / ``load_tokenizer``."""
    return {"revision": config.revision, "token": config.token}


def load_input(config: TrainConfig, source: str) -> list:
    """Records of one input (a file, ``tofu:`` split or ``hf://`` dataset, read with --token)."""
    return load_records(source, field_map=parse_field_map(config.field_map), token=config.token)


def load_forget(config: UnlearnConfig, method, hyper) -> list:
    forget = load_input(config, config.forget)
    if config.identifier:
        if not method.needs_spans(hyper):
            raise TifError("--identifier applies to --method tif and to --targeted methods only")
        forget = run_on_main(lambda: identify_inline(config.identifier, forget))
    if method.needs_spans(hyper):
        require_annotations(forget, config.forget)
    return forget


def load_idk(config: UnlearnConfig, method, forget: list) -> list[QARecord]:
    if not all(isinstance(r, QARecord) for r in forget):
        raise TifError(
            f"method '{method.name}' needs question/answer forget records (it pairs each "
            f"question with a refusal); {config.forget} holds plain texts: use tif, ga, "
            "graddiff, npo or simnpo"
        )
    return idk_records(forget, load_refusals(config.refusals), config.seed)


def load_unlearn_inputs(config: UnlearnConfig, method, hyper) -> dict:
    """Load and validate every input record before any model is loaded."""
    forget = load_forget(config, method, hyper)
    if method.retain == "required" and not config.retain:
        raise TifError(f"method '{method.name}' needs a retain set (--retain)")
    retain = None
    if config.retain and method.retain != "unused":
        retain = load_input(config, config.retain)
    idk = load_idk(config, method, forget) if method.uses_idk else None
    return {"forget": forget, "retain": retain, "idk": idk}


def window_inputs(inputs: dict, config: TrainConfig) -> dict:
    """Cut the text records of every input set into token windows (this loads the model's
    tokenizer alone, so that a text too short fails before the model is loaded)."""
    records = [r for name, rs in inputs.items() if name != "idk" for r in rs or ()]
    if not any(isinstance(r, TextRecord) for r in records):
        return inputs
    tokenizer = load_tokenizer(
        config.model,
        trust_remote_code=config.trust_remote_code,
        allow_pickle=config.allow_pickle,
        **hub_access(config),
    )
    return {
        name: records
        if records is None or name == "idk"
        else window_records(
            records,
            tokenizer,
            length=config.window_length,
            stride=config.window_stride,
            short_texts=config.short_texts,
        )
        for name, records in inputs.items()
    }
