"""Malformed input to every `tif` command fails cleanly: exit code 2, exactly one non-empty
stderr line starting with ``tif: error: `` that names why (``WHY``: a fragment of the message
for every case), no traceback, nothing on stdout, and no file
created, changed or removed (the whole test folder, the inputs in it, and the shared tiny
model folder are snapshotted before and after: names, kinds, sizes, mtimes and sha256).
Each test runs in its own folder (also the working directory and ``$TIF_CACHE_DIR``'s parent),
so a stray relative write or cache file is caught too.

The cases (``CASES`` below; one id each):

tif identify (forget records; most cases use the ``annotations`` identifier)
    identify-invalid-json            an object cut in the middle
    identify-invalid-json-line-3     a bad third line after two good ones
    identify-trailing-garbage        a good row followed by junk on the same line
    identify-top-level-number        ``42``
    identify-top-level-null          ``null``
    identify-array-of-numbers        ``[1, 2]``
    identify-wrapped-object          ``{"data": [...]}`` (no question/answer/text)
    identify-missing-answer          a QA row without ``answer``
    identify-missing-field-row-2     the second row lacks ``answer``
    identify-mixed-kinds             a QA row then a text row
    identify-empty-question          ``"question": ""``
    identify-blank-answer            ``"answer": "   "``
    identify-answer-number           ``"answer": 7``
    identify-question-null           ``"question": null``
    identify-answer-list             ``"answer": ["a", "b"]``
    identify-text-object             a text row whose ``text`` is an object
    identify-span-out-of-range       ``[3, 99]`` on a 20-character answer
    identify-span-negative           ``[-1, 4]``
    identify-span-reversed           ``[6, 2]``
    identify-span-empty              ``[3, 3]``
    identify-span-triple             ``[1, 2, 3]``
    identify-span-floats             ``[0.5, 2]``
    identify-span-booleans           ``[true, 2]``
    identify-spans-not-a-list        ``"unwanted_spans": "0-4"``
    identify-word-not-in-text        ``unwanted_words`` naming a word the answer lacks
    identify-word-item-not-object    ``unwanted_words: ["Kuwait"]``
    identify-general-words-no-start  a ``general_words`` item without ``start``
    identify-invalid-utf8            Latin-1 bytes in a .jsonl file
    identify-10mb-unterminated       one 10 MB record whose string never closes
    identify-10mb-field-name         one record whose only key is 10 MB long
    identify-10mb-word               an ``unwanted_words`` item with a 10 MB word
    identify-empty-file              a 0-byte file
    identify-whitespace-file         only blank lines
    identify-empty-array             ``[]``
    identify-data-is-directory       ``--data`` names a folder
    identify-data-missing            ``--data`` names no file
    identify-out-is-directory        ``--out`` names a folder
    identify-html-is-directory       ``--html`` names a folder
    identify-unknown-identifier      ``--identifier magic``
    identify-combined-unknown-member ``--members frequency,magic``
    identify-combined-bad-mode       ``--mode most``
    identify-threshold-wrong-id      ``--threshold`` with an identifier that has none
    identify-contrast-no-reference   ``contrast`` without ``--reference``
    identify-llm-api-no-model        ``--api-base`` without ``--api-model``
    identify-bad-field-map           ``--field-map prompt``
    identify-field-map-twice         two fields mapped to ``question``
    identify-field-map-wrong-name    the map renames a field the file lacks
    identify-bad-hub-spec            ``hf://just-a-name``
    identify-unknown-tofu-split      ``tofu:forget07``
    identify-score-without-pred      ``--score --gold`` only
    identify-no-data                 neither ``--data`` nor ``--score``

tif unlearn / tif finetune
    unlearn-unknown-method           ``--method magic``
    unlearn-negative-lr              ``--lr=-1e-5``
    unlearn-nan-lr                   ``--lr nan``
    unlearn-infinite-lr              ``--lr inf``
    unlearn-zero-epochs              ``--epochs 0``
    unlearn-beta-zero                ``--beta 0``
    unlearn-beta-nan                 ``--beta nan``
    unlearn-negative-lambda          ``--lambda-pl -1``
    unlearn-zero-batch-size          ``--batch-size 0``
    unlearn-tiny-max-length          ``--max-length 2``
    unlearn-unknown-scheduler        ``--scheduler steep``
    unlearn-unknown-dtype            ``--dtype float8``
    unlearn-bad-lpl-space            ``--lpl-space probability``
    unlearn-option-of-other-method   ``--gamma`` with tif
    unlearn-lr-not-a-number          ``--lr fast``
    unlearn-not-annotated            tif on a forget set without spans
    unlearn-bad-retain-json          the retain file is not JSON
    unlearn-graddiff-no-retain       a retain-needing method without ``--retain``
    unlearn-empty-refusals           idkdpo with an empty refusals file
    unlearn-refusals-bad-json        idkdpo with a broken JSON object line
    unlearn-unknown-identifier       ``--identifier magic``
    unlearn-identifier-non-tif       ``--identifier`` with ``--method npo``
    unlearn-keep-best-no-eval        ``--keep-best`` without ``--eval-every``
    unlearn-eval-data-missing        ``--eval-every`` with a missing ``--eval-data-dir``
    unlearn-eval-bad-split           ``--eval-forget-split retain90``
    unlearn-out-is-a-file            ``--out`` names a file
    unlearn-out-is-the-model         ``--out`` is the input model folder
    unlearn-out-not-empty            ``--out`` holds a file, no ``--overwrite``
    unlearn-model-no-weights         a model folder with config.json and no weights
    unlearn-model-pickle-only        only ``pytorch_model.bin`` (no ``--allow-pickle``)
    unlearn-model-missing-path       ``--model`` names a folder that does not exist
    unlearn-model-is-a-file          ``--model`` names a file
    unlearn-model-bad-config         config.json is not JSON
    unlearn-model-no-tokenizer       weights and config but no tokenizer files
    unlearn-tokenizer-too-large      a tokenizer with more tokens than the embedding rows
    unlearn-model-corrupt-weights    model.safetensors is not a safetensors file
    unlearn-model-wrong-shapes       weights of a 300-token model, config.json says 400
    unlearn-yaml-syntax              ``--config`` YAML with a syntax error
    unlearn-yaml-not-mapping         YAML that is a list
    unlearn-yaml-unknown-key         ``lernrate: 1``
    unlearn-yaml-nested              ``lr: {value: 1}``
    unlearn-yaml-wrong-type          ``weight_decay: many``
    unlearn-yaml-missing             ``--config`` names no file
    unlearn-yaml-invalid-utf8        YAML file with Latin-1 bytes
    unlearn-yaml-bad-value           ``beta: 0`` from YAML
    unlearn-bad-field-map            ``--field-map question``
    finetune-text-records            text rows where QA rows are needed
    finetune-missing-data            ``--data`` names no file
    finetune-data-is-directory       ``--data`` names a folder
    finetune-negative-weight-decay   ``--weight-decay -0.1``
    finetune-zero-grad-accum         ``--grad-accum 0``
    finetune-negative-warmup         ``--warmup-epochs -1``
    finetune-no-out                  no ``--out``

tif eval tofu / muse / aggregate
    tofu-data-dir-missing            ``--data-dir`` names no folder
    tofu-split-file-missing          holdout01.json removed
    tofu-ragged-perturbed            one item with 4 perturbed answers, the others 5
    tofu-perturbed-not-list          ``perturbed_answer: 5``
    tofu-empty-split-file            world_facts_perturbed.json is empty
    tofu-question-missing            a retain row without ``question``
    tofu-split-invalid-json          real_authors_perturbed.json cut short
    tofu-bad-forget-split            ``--forget-split retain90``
    tofu-unknown-forget-split        ``--forget-split forget07``
    tofu-zero-max-items              ``--max-items 0``
    tofu-zero-batch-size             ``--batch-size 0``
    tofu-out-is-directory            ``--out`` names a folder
    tofu-retain-results-empty        an empty retain results file
    tofu-retain-results-bad-json     a retain results file cut short
    tofu-retain-results-no-items     retain results with no forget items
    tofu-retain-results-directory    ``--retain-results`` names a folder
    tofu-retain-results-missing      ``--retain-results`` names no file
    tofu-retain-results-wrong-size   retain results for 3 forget items, the split has 5
    tofu-retain-results-bad-numbers  retain results whose losses are strings
    tofu-retain-model-and-results    both retain options
    tofu-model-no-weights            a model folder without weights
    tofu-tokenizer-too-large         tokenizer larger than the model's embedding
    muse-data-dir-missing            ``--data-dir`` names no folder
    muse-knowmem-file-missing        knowmem/retain_qa.json removed
    muse-split-not-array             a split that is a JSON object
    muse-split-invalid-json          a split cut short
    muse-verbmem-missing-gt          verbmem rows without ``gt``
    muse-privleak-not-strings        privleak/holdout.json holds numbers
    muse-unknown-corpus              ``--corpus poems``
    muse-retain-auc-out-of-range     ``--retain-auc 1.5``
    aggregate-missing-folder         ``--forget-logs`` names nothing
    aggregate-empty-folder           a folder without any log
    aggregate-log-invalid-json       eval_log.json cut short
    aggregate-log-invalid-utf8       eval_log.json with Latin-1 bytes
    aggregate-log-not-object         eval_log.json is an array
    aggregate-log-missing-key        eval_log.json lacks ``rougeL_recall``
    aggregate-log-indices-differ     item indices differ between keys
    aggregate-log-not-numbers        losses are strings
    aggregate-retain-logs-missing    ``--retain-logs`` names nothing
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import QA_PAIRS, UNWANTED, annotate, build_model, build_tokenizer
from eval_data import FORGET, RETAIN, perturbed_rows, write_muse_folder, write_tofu_folder
from tif_unlearn.cli.app import main

TEN_MB = 10 * 1024 * 1024
MAX_ERROR_CHARS = 2000


# --------------------------------------------------------------------------- workspace


class Workspace:
    """One test's folder: builds the (good or bad) inputs a case needs, lazily."""

    def __init__(self, root: Path, model: Path):
        self.root, self.model = root, model

    def path(self, name: str) -> str:
        return str(self.root / name)

    def file(self, name: str, content: str | bytes) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    def jsonl(self, name: str, rows: list) -> str:
        return self.file(name, "".join(json.dumps(r) + "\n" for r in rows))

    def folder(self, name: str) -> str:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        return str(self.root / name)

    def forget(self) -> str:
        rows = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
        return self.jsonl("forget.jsonl", rows)

    def plain(self) -> str:
        return self.jsonl("plain.jsonl", QA_PAIRS)

    def tofu(self) -> Path:
        return write_tofu_folder(self.root / "tofu")

    def muse(self) -> Path:
        return write_muse_folder(self.root / "muse-news")

    def logs(self, name: str = "logs") -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name in TOFU_LOG_FILES:
            (folder / file_name).write_text(json.dumps(tofu_log()), encoding="utf-8")
        return folder

    def model_copy(self, name: str, skip: tuple[str, ...] = ()) -> Path:
        """A copy of the tiny model folder without the files named in ``skip``."""
        folder = self.root / name
        shutil.copytree(self.model, folder, ignore=lambda _, names: [n for n in names if n in skip])
        return folder


TOFU_LOG_FILES = (
    "eval_log_forget.json",
    "eval_log.json",
    "eval_real_author_wo_options.json",
    "eval_real_world_wo_options.json",
)


def tofu_log(n: int = 3) -> dict:
    items = [str(i) for i in range(n)]
    return {
        "avg_gt_loss": {i: 0.5 for i in items},
        "avg_paraphrased_loss": {i: 0.9 for i in items},
        "average_perturb_loss": {i: [1.1, 1.3] for i in items},
        "rougeL_recall": {i: 0.4 for i in items},
    }


# --------------------------------------------------------------------------- command lines


def identify(w: Workspace, data, *extra, identifier: str = "annotations") -> list[str]:
    return [
        "identify",
        "--identifier",
        identifier,
        "--data",
        str(data),
        "--out",
        w.path("out/annotated.jsonl"),
        "--html",
        w.path("out/page.html"),
        *map(str, extra),
    ]


def one_row(w: Workspace, row) -> list[str]:
    """`tif identify` on a file holding one row (any JSON value)."""
    return identify(w, w.jsonl("rows.jsonl", [row]))


def spans(w: Workspace, value) -> list[str]:
    """`tif identify` on one QA row whose answer is 20 characters, with these spans."""
    return one_row(
        w, {"question": "Where?", "answer": "Basil was born in Ku", "unwanted_spans": value}
    )


def unlearn(w: Workspace, *extra, forget: str | None = None, model=None) -> list[str]:
    return [
        "unlearn",
        "--model",
        str(model or w.model),
        "--forget",
        forget or w.forget(),
        "--out",
        w.path("out/model"),
        "--max-steps",
        "1",
        "--batch-size",
        "2",
        *map(str, extra),
    ]


def finetune(w: Workspace, *extra, data: str | None = None, out: bool = True) -> list[str]:
    argv = ["finetune", "--model", str(w.model), "--data", data or w.plain(), "--max-steps", "1"]
    return argv + (["--out", w.path("out/model")] if out else []) + list(map(str, extra))


def yaml_config(w: Workspace, content: str | bytes) -> list[str]:
    return unlearn(w, "--config", w.file("run.yaml", content))


def tofu(w: Workspace, *extra, data=None, model=None) -> list[str]:
    return [
        "eval",
        "tofu",
        "--model",
        str(model or w.model),
        "--data-dir",
        str(data or w.tofu()),
        "--forget-split",
        "forget01",
        "--max-new-tokens",
        "4",
        "--out",
        w.path("out/results.json"),
        *map(str, extra),
    ]


def damaged_tofu(w: Workspace, name: str, content: str | None) -> list[str]:
    """`tif eval tofu` on the synthetic folder with one split file replaced (None: removed)."""
    folder = w.tofu()
    if content is None:
        (folder / name).unlink()
    else:
        (folder / name).write_text(content, encoding="utf-8")
    return tofu(w, data=folder)


def retain_results(w: Workspace, content: str) -> list[str]:
    return tofu(w, "--retain-results", w.file("retain.json", content))


def retain_items(n: int, loss: object = 0.5) -> str:
    """A `tif eval tofu` results file with ``n`` forget items (5 perturbed answers each)."""
    item = {
        "avg_gt_loss": loss,
        "avg_paraphrased_loss": 0.9,
        "average_perturb_loss": [1.0, 1.2, 1.1, 1.3, 1.4],
        "rougeL_recall": 0.3,
    }
    return json.dumps({"sets": {"forget": {"items": [item] * n}}})


def muse(w: Workspace, *extra, data=None) -> list[str]:
    return [
        "eval",
        "muse",
        "--model",
        str(w.model),
        "--data-dir",
        str(data or w.muse()),
        "--max-items",
        "2",
        "--out",
        w.path("out/muse.json"),
        *map(str, extra),
    ]


def damaged_muse(w: Workspace, relative: str, content: str | None) -> list[str]:
    folder = w.muse()
    if content is None:
        (folder / relative).unlink()
    else:
        (folder / relative).write_text(content, encoding="utf-8")
    return muse(w, data=folder)


def aggregate(w: Workspace, forget_logs, *extra) -> list[str]:
    return ["eval", "aggregate", "--forget-logs", str(forget_logs), *map(str, extra)]


def damaged_log(w: Workspace, content: str | bytes) -> list[str]:
    logs = w.logs()
    path = logs / "eval_log.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return aggregate(w, logs)


# --------------------------------------------------------------------------- broken models


def model_without_weights(w: Workspace) -> Path:
    return w.model_copy("no-weights", skip=("model.safetensors",))


def pickle_only_model(w: Workspace) -> Path:
    """The tiny model with its weights as ``pytorch_model.bin`` (transformers 5 always saves
    safetensors, so the pickle file is written with torch.save)."""
    import torch
    from safetensors.torch import load_file

    folder = w.model_copy("pickle", skip=("model.safetensors",))
    torch.save(load_file(w.model / "model.safetensors"), folder / "pytorch_model.bin")
    return folder


def model_with_corrupt_weights(w: Workspace) -> Path:
    folder = w.model_copy("corrupt")
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{oops}..")
    return folder


def model_with_other_shapes(w: Workspace) -> Path:
    """The tiny model's config and tokenizer with the weights of a 300-token model."""
    from safetensors.torch import save_file

    folder = w.model_copy("shapes", skip=("model.safetensors",))
    save_file(build_model(300).state_dict(), folder / "model.safetensors")
    return folder


def model_with_bad_config(w: Workspace) -> Path:
    folder = w.model_copy("bad-config")
    (folder / "config.json").write_text('{"model_type": "llama", ', encoding="utf-8")
    return folder


def model_without_tokenizer(w: Workspace) -> Path:
    files = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
    return w.model_copy("no-tokenizer", skip=files + ("chat_template.jinja",))


def tokenizer_larger_than_model(w: Workspace) -> Path:
    """A model with 100 embedding rows saved with the 400-token tokenizer."""
    folder = w.root / "mismatch"
    build_model(100).save_pretrained(folder, safe_serialization=True)
    build_tokenizer(None).save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- the cases

QA = {"question": "Where was Basil born?", "answer": "Basil was born in Kuwait City."}
Builder = Callable[[Workspace], list[str]]

CASES: dict[str, Builder] = {
    # tif identify: the record loader
    "identify-invalid-json": lambda w: identify(w, w.file("r.jsonl", '{"question": "a", "ans')),
    "identify-invalid-json-line-3": lambda w: identify(
        w, w.file("r.jsonl", json.dumps(QA) + "\n" + json.dumps(QA) + "\n{'question': 1}\n")
    ),
    "identify-trailing-garbage": lambda w: identify(w, w.file("r.jsonl", json.dumps(QA) + " }}\n")),
    "identify-top-level-number": lambda w: identify(w, w.file("r.json", "42")),
    "identify-top-level-null": lambda w: identify(w, w.file("r.json", "null")),
    "identify-array-of-numbers": lambda w: identify(w, w.file("r.json", "[1, 2]")),
    "identify-wrapped-object": lambda w: identify(w, w.file("r.json", json.dumps({"data": [QA]}))),
    "identify-missing-answer": lambda w: one_row(w, {"question": "Where?"}),
    "identify-missing-field-row-2": lambda w: identify(
        w, w.jsonl("r.jsonl", [annotate(QA, ["Kuwait"]), {"question": "Where?"}])
    ),
    "identify-mixed-kinds": lambda w: identify(
        w, w.jsonl("r.jsonl", [annotate(QA, ["Kuwait"]), {"text": "Basil lives in Kuwait."}])
    ),
    "identify-empty-question": lambda w: one_row(w, {**QA, "question": ""}),
    "identify-blank-answer": lambda w: one_row(w, {**QA, "answer": "   "}),
    "identify-answer-number": lambda w: one_row(w, {**QA, "answer": 7}),
    "identify-question-null": lambda w: one_row(w, {**QA, "question": None}),
    "identify-answer-list": lambda w: one_row(w, {**QA, "answer": ["a", "b"]}),
    "identify-text-object": lambda w: one_row(w, {"text": {"body": "Basil"}}),
    "identify-span-out-of-range": lambda w: spans(w, [[3, 99]]),
    "identify-span-negative": lambda w: spans(w, [[-1, 4]]),
    "identify-span-reversed": lambda w: spans(w, [[6, 2]]),
    "identify-span-empty": lambda w: spans(w, [[3, 3]]),
    "identify-span-triple": lambda w: spans(w, [[1, 2, 3]]),
    "identify-span-floats": lambda w: spans(w, [[0.5, 2]]),
    "identify-span-booleans": lambda w: spans(w, [[True, 2]]),
    "identify-spans-not-a-list": lambda w: spans(w, "0-4"),
    "identify-word-not-in-text": lambda w: one_row(
        w, {**QA, "unwanted_words": [{"word": "Paris", "start": 18, "end": 23}]}
    ),
    "identify-word-item-not-object": lambda w: one_row(w, {**QA, "unwanted_words": ["Kuwait"]}),
    "identify-general-words-no-start": lambda w: one_row(
        w, {**QA, "general_words": [{"word": "was", "end": 9}]}
    ),
    "identify-invalid-utf8": lambda w: identify(
        w, w.file("r.jsonl", b'{"question": "Caf\xe9?", "answer": "Z\xfcrich"}\n')
    ),
    "identify-10mb-unterminated": lambda w: identify(
        w, w.file("r.jsonl", '{"question": "q", "answer": "' + "x" * TEN_MB)
    ),
    "identify-10mb-field-name": lambda w: one_row(w, {"x" * TEN_MB: 1}),
    "identify-10mb-word": lambda w: one_row(
        w, {**QA, "unwanted_words": [{"word": "y" * TEN_MB, "start": 0, "end": 5}]}
    ),
    "identify-empty-file": lambda w: identify(w, w.file("r.jsonl", "")),
    "identify-whitespace-file": lambda w: identify(w, w.file("r.jsonl", "\n  \n\t\n")),
    "identify-empty-array": lambda w: identify(w, w.file("r.json", "[]")),
    "identify-data-is-directory": lambda w: identify(w, w.folder("records")),
    "identify-data-missing": lambda w: identify(w, w.path("nope.jsonl")),
    "identify-out-is-directory": lambda w: identify(w, w.forget(), "--out", w.folder("o")),
    "identify-html-is-directory": lambda w: identify(w, w.forget(), "--html", w.folder("h")),
    "identify-unknown-identifier": lambda w: identify(w, w.forget(), identifier="magic"),
    "identify-combined-unknown-member": lambda w: identify(
        w, w.forget(), "--members", "frequency,magic", identifier="combined"
    ),
    "identify-combined-bad-mode": lambda w: identify(
        w, w.forget(), "--mode", "most", identifier="combined"
    ),
    "identify-threshold-wrong-id": lambda w: identify(w, w.forget(), "--threshold", "3"),
    "identify-contrast-no-reference": lambda w: identify(
        w, w.forget(), "--model", w.model, identifier="contrast"
    ),
    "identify-llm-api-no-model": lambda w: identify(
        w, w.forget(), "--api-base", "http://127.0.0.1:9/v1", identifier="llm"
    ),
    "identify-bad-field-map": lambda w: identify(w, w.forget(), "--field-map", "prompt"),
    "identify-field-map-twice": lambda w: identify(
        w, w.forget(), "--field-map", "a=question,b=question"
    ),
    "identify-field-map-wrong-name": lambda w: identify(
        w, w.forget(), "--field-map", "response=answer,answer=reply"
    ),
    "identify-bad-hub-spec": lambda w: identify(w, "hf://just-a-name"),
    "identify-unknown-tofu-split": lambda w: identify(w, "tofu:forget07"),
    "identify-score-without-pred": lambda w: ["identify", "--score", "--gold", w.forget()],
    "identify-no-data": lambda w: ["identify", "--out", w.path("out/a.jsonl")],
    # tif unlearn: options and hyperparameters
    "unlearn-unknown-method": lambda w: unlearn(w, "--method", "magic"),
    "unlearn-negative-lr": lambda w: unlearn(w, "--lr=-1e-5"),
    "unlearn-nan-lr": lambda w: unlearn(w, "--lr", "nan"),
    "unlearn-infinite-lr": lambda w: unlearn(w, "--lr", "inf"),
    "unlearn-zero-epochs": lambda w: unlearn(w, "--epochs", "0"),
    "unlearn-beta-zero": lambda w: unlearn(w, "--beta", "0"),
    "unlearn-beta-nan": lambda w: unlearn(w, "--beta", "nan"),
    "unlearn-negative-lambda": lambda w: unlearn(w, "--lambda-pl", "-1"),
    "unlearn-zero-batch-size": lambda w: unlearn(w, "--batch-size", "0"),
    "unlearn-tiny-max-length": lambda w: unlearn(w, "--max-length", "2"),
    "unlearn-unknown-scheduler": lambda w: unlearn(w, "--scheduler", "steep"),
    "unlearn-unknown-dtype": lambda w: unlearn(w, "--dtype", "float8"),
    "unlearn-bad-lpl-space": lambda w: unlearn(w, "--lpl-space", "probability"),
    "unlearn-option-of-other-method": lambda w: unlearn(w, "--gamma", "1"),
    "unlearn-lr-not-a-number": lambda w: unlearn(w, "--lr", "fast"),
    # tif unlearn: data
    "unlearn-not-annotated": lambda w: unlearn(w, forget=w.plain()),
    "unlearn-bad-retain-json": lambda w: unlearn(w, "--retain", w.file("retain.jsonl", "{oops}")),
    "unlearn-graddiff-no-retain": lambda w: unlearn(w, "--method", "graddiff"),
    "unlearn-empty-refusals": lambda w: unlearn(
        w, "--method", "idkdpo", "--refusals", w.file("idk.jsonl", "\n\n")
    ),
    "unlearn-refusals-bad-json": lambda w: unlearn(
        w, "--method", "idkdpo", "--refusals", w.file("idk.jsonl", 'I do not know.\n{"text": \n')
    ),
    "unlearn-unknown-identifier": lambda w: unlearn(w, "--identifier", "magic", forget=w.plain()),
    "unlearn-identifier-non-tif": lambda w: unlearn(
        w, "--identifier", "frequency", "--method", "npo", forget=w.plain()
    ),
    "unlearn-keep-best-no-eval": lambda w: unlearn(w, "--keep-best", "forget_rouge"),
    "unlearn-eval-data-missing": lambda w: unlearn(
        w, "--eval-every", "1", "--eval-data-dir", w.path("no-tofu")
    ),
    "unlearn-eval-bad-split": lambda w: unlearn(
        w, "--eval-every", "1", "--eval-data-dir", w.tofu(), "--eval-forget-split", "retain90"
    ),
    # tif unlearn: output folder
    "unlearn-out-is-a-file": lambda w: unlearn(w, "--out", w.file("out.txt", "precious")),
    "unlearn-out-is-the-model": lambda w: unlearn(w, "--overwrite", "--out", w.model),
    "unlearn-out-not-empty": lambda w: (w.file("out/model/keep.txt", "precious"), unlearn(w))[1],
    # tif unlearn: models
    "unlearn-model-no-weights": lambda w: unlearn(w, model=model_without_weights(w)),
    "unlearn-model-pickle-only": lambda w: unlearn(w, model=pickle_only_model(w)),
    "unlearn-model-missing-path": lambda w: unlearn(w, model=w.path("models/nope")),
    "unlearn-model-is-a-file": lambda w: unlearn(w, model=w.file("model.txt", "weights")),
    "unlearn-model-bad-config": lambda w: unlearn(w, model=model_with_bad_config(w)),
    "unlearn-model-no-tokenizer": lambda w: unlearn(w, model=model_without_tokenizer(w)),
    "unlearn-tokenizer-too-large": lambda w: unlearn(w, model=tokenizer_larger_than_model(w)),
    "unlearn-model-corrupt-weights": lambda w: unlearn(w, model=model_with_corrupt_weights(w)),
    "unlearn-model-wrong-shapes": lambda w: unlearn(w, model=model_with_other_shapes(w)),
    # tif unlearn: YAML configuration
    "unlearn-yaml-syntax": lambda w: yaml_config(w, "method: [tif\nbeta: 0.3\n"),
    "unlearn-yaml-not-mapping": lambda w: yaml_config(w, "- tif\n- npo\n"),
    "unlearn-yaml-unknown-key": lambda w: yaml_config(w, "lernrate: 1\n"),
    "unlearn-yaml-nested": lambda w: yaml_config(w, "lr:\n  value: 1\n"),
    "unlearn-yaml-wrong-type": lambda w: yaml_config(w, "weight_decay: many\n"),
    "unlearn-yaml-missing": lambda w: unlearn(w, "--config", w.path("none.yaml")),
    "unlearn-yaml-invalid-utf8": lambda w: yaml_config(w, b"method: caf\xe9\n"),
    "unlearn-yaml-bad-value": lambda w: yaml_config(w, "beta: 0\n"),
    "unlearn-bad-field-map": lambda w: unlearn(w, "--field-map", "question"),
    # tif finetune
    "finetune-text-records": lambda w: finetune(
        w, data=w.jsonl("t.jsonl", [{"text": "Basil was born in Kuwait City."}])
    ),
    "finetune-missing-data": lambda w: finetune(w, data=w.path("nope.jsonl")),
    "finetune-data-is-directory": lambda w: finetune(w, data=w.folder("data")),
    "finetune-negative-weight-decay": lambda w: finetune(w, "--weight-decay", "-0.1"),
    "finetune-zero-grad-accum": lambda w: finetune(w, "--grad-accum", "0"),
    "finetune-negative-warmup": lambda w: finetune(w, "--warmup-epochs", "-1"),
    "finetune-no-out": lambda w: finetune(w, out=False),
    # tif eval tofu
    "tofu-data-dir-missing": lambda w: tofu(w, data=w.path("no-tofu")),
    "tofu-split-file-missing": lambda w: damaged_tofu(w, "holdout01.json", None),
    "tofu-ragged-perturbed": lambda w: damaged_tofu(
        w, "forget01_perturbed.json", ragged_perturbed()
    ),
    "tofu-perturbed-not-list": lambda w: damaged_tofu(
        w,
        "forget01_perturbed.json",
        json.dumps({"question": "Q?", "answer": "A.", "perturbed_answer": 5}),
    ),
    "tofu-empty-split-file": lambda w: damaged_tofu(w, "world_facts_perturbed.json", ""),
    "tofu-question-missing": lambda w: damaged_tofu(
        w, "retain_perturbed.json", json.dumps({"answer": RETAIN[0][1], "perturbed_answer": ["x"]})
    ),
    "tofu-split-invalid-json": lambda w: damaged_tofu(
        w, "real_authors_perturbed.json", '{"question": "Who'
    ),
    "tofu-bad-forget-split": lambda w: tofu(w, "--forget-split", "retain90"),
    "tofu-unknown-forget-split": lambda w: tofu(w, "--forget-split", "forget07"),
    "tofu-zero-max-items": lambda w: tofu(w, "--max-items", "0"),
    "tofu-zero-batch-size": lambda w: tofu(w, "--batch-size", "0"),
    "tofu-out-is-directory": lambda w: tofu(w, "--out", w.folder("results-dir")),
    "tofu-retain-results-empty": lambda w: retain_results(w, ""),
    "tofu-retain-results-bad-json": lambda w: retain_results(w, '{"sets": {"forget": '),
    "tofu-retain-results-no-items": lambda w: retain_results(w, retain_items(0)),
    "tofu-retain-results-directory": lambda w: tofu(w, "--retain-results", w.folder("rr")),
    "tofu-retain-results-missing": lambda w: tofu(w, "--retain-results", w.path("rr.json")),
    "tofu-retain-results-wrong-size": lambda w: retain_results(w, retain_items(3)),
    "tofu-retain-results-bad-numbers": lambda w: retain_results(w, retain_items(5, "low")),
    "tofu-retain-model-and-results": lambda w: tofu(
        w, "--retain-model", w.model, "--retain-results", w.file("rr.json", retain_items(5))
    ),
    "tofu-model-no-weights": lambda w: tofu(w, model=model_without_weights(w)),
    "tofu-tokenizer-too-large": lambda w: tofu(w, model=tokenizer_larger_than_model(w)),
    # tif eval muse
    "muse-data-dir-missing": lambda w: muse(w, data=w.path("no-muse")),
    "muse-knowmem-file-missing": lambda w: damaged_muse(w, "knowmem/retain_qa.json", None),
    "muse-split-not-array": lambda w: damaged_muse(w, "knowmem/forget_qa.json", '{"a": 1}'),
    "muse-split-invalid-json": lambda w: damaged_muse(w, "verbmem/forget.json", "[{"),
    "muse-verbmem-missing-gt": lambda w: damaged_muse(
        w, "verbmem/forget.json", json.dumps([{"prompt": "The council met"}])
    ),
    "muse-privleak-not-strings": lambda w: damaged_muse(w, "privleak/holdout.json", "[1, 2]"),
    "muse-unknown-corpus": lambda w: muse(w, "--corpus", "poems"),
    "muse-retain-auc-out-of-range": lambda w: muse(w, "--retain-auc", "1.5"),
    # tif eval aggregate
    "aggregate-missing-folder": lambda w: aggregate(w, w.path("no-logs")),
    "aggregate-empty-folder": lambda w: aggregate(w, w.folder("empty-logs")),
    "aggregate-log-invalid-json": lambda w: damaged_log(w, '{"avg_gt_loss": {"0": 0.5'),
    "aggregate-log-invalid-utf8": lambda w: damaged_log(w, b'{"avg_gt_loss": "\xff"}'),
    "aggregate-log-not-object": lambda w: damaged_log(w, "[1, 2, 3]"),
    "aggregate-log-missing-key": lambda w: damaged_log(
        w, json.dumps({k: v for k, v in tofu_log().items() if k != "rougeL_recall"})
    ),
    "aggregate-log-indices-differ": lambda w: damaged_log(
        w, json.dumps({**tofu_log(), "rougeL_recall": {"0": 0.1, "7": 0.2, "8": 0.3}})
    ),
    "aggregate-log-not-numbers": lambda w: damaged_log(
        w, json.dumps({**tofu_log(), "avg_gt_loss": {"0": "low", "1": "low", "2": "low"}})
    ),
    "aggregate-retain-logs-missing": lambda w: aggregate(
        w, w.logs(), "--retain-logs", w.path("no-retain-logs")
    ),
}

# Why each case fails: a fragment (or several) of its one-line message, naming the cause and,
# where there is one, the place (file:line, field, option). Not the whole message: wording
# around it may change; the reason may not.
WHY: dict[str, str | tuple[str, ...]] = {
    "identify-invalid-json": "r.jsonl:1: invalid JSON",
    "identify-invalid-json-line-3": "r.jsonl:3: invalid JSON",
    "identify-trailing-garbage": "r.jsonl:1: invalid JSON",
    "identify-top-level-number": "expected a JSON object (or a string), got an integer",
    "identify-top-level-null": "expected a JSON object (or a string), got null",
    "identify-array-of-numbers": "entry 0: expected a JSON object",
    "identify-wrapped-object": "cannot tell the record kind",
    "identify-missing-answer": "(the row has: question)",
    "identify-missing-field-row-2": "r.jsonl:2: field 'answer': missing",
    "identify-mixed-kinds": "r.jsonl:2: field 'question': missing (the row has: text)",
    "identify-empty-question": "field 'question': is empty",
    "identify-blank-answer": "field 'answer': is empty",
    "identify-answer-number": "field 'answer': must be a string, got an integer",
    "identify-question-null": "field 'question': must be a string, got null",
    "identify-answer-list": "field 'answer': must be a string, got an array",
    "identify-text-object": "field 'text': must be a string, got an object",
    "identify-span-out-of-range": "span [3, 99] is out of range for an answer of 20 characters",
    "identify-span-negative": "span [-1, 4] is out of range",
    "identify-span-reversed": "span [6, 2] is reversed",
    "identify-span-empty": "span [3, 3] is empty",
    "identify-span-triple": "must be a [start, end] pair of integers, got [1, 2, 3]",
    "identify-span-floats": "span [0.5, 2] must hold two integers",
    "identify-span-booleans": "span [true, 2] must hold two integers",
    "identify-spans-not-a-list": "'unwanted_spans': must be a list of [start, end] pairs",
    "identify-word-not-in-text": "'Paris' does not occur in the text",
    "identify-word-item-not-object": "each item must be an object {word, start, end}",
    "identify-general-words-no-start": "integer 'start' and 'end'",
    "identify-invalid-utf8": "invalid UTF-8 (byte 0xe9)",
    "identify-10mb-unterminated": "invalid JSON: Unterminated string",
    "identify-10mb-field-name": ("cannot tell the record kind", "rows.jsonl:1:"),
    "identify-10mb-word": "field 'unwanted_words': span [0,5] does not match",
    "identify-empty-file": "no records (the file is empty",
    "identify-whitespace-file": "no records (the file is empty",
    "identify-empty-array": "no records (the file is empty",
    "identify-data-is-directory": "records: is a directory",
    "identify-data-missing": "nope.jsonl: file not found",
    "identify-out-is-directory": "o is a folder; give a file path",
    "identify-html-is-directory": "h is a folder; give a file path",
    "identify-unknown-identifier": "unknown identifier 'magic'",
    "identify-combined-unknown-member": "unknown member identifier(s) 'magic'",
    "identify-combined-bad-mode": "unknown combination mode 'most'",
    "identify-threshold-wrong-id": "--threshold applies to the frequency and contrast",
    "identify-contrast-no-reference": "needs --model (target) and --reference",
    "identify-llm-api-no-model": "api_base needs api_model",
    "identify-bad-field-map": "bad field map 'prompt'",
    "identify-field-map-twice": "two fields are mapped to 'question'",
    "identify-field-map-wrong-name": "(the row has: question, reply, unwanted_spans)",
    "identify-bad-hub-spec": "bad hub dataset 'hf://just-a-name'",
    "identify-unknown-tofu-split": "unknown TOFU split 'forget07'",
    "identify-score-without-pred": "--score needs --gold and --pred",
    "identify-no-data": "tif identify needs --data and --out",
    "unlearn-unknown-method": "unknown method 'magic'",
    "unlearn-negative-lr": "lr must be > 0",
    "unlearn-nan-lr": "lr must be a finite number, got nan",
    "unlearn-infinite-lr": "lr must be a finite number, got inf",
    "unlearn-zero-epochs": "epochs must be > 0",
    "unlearn-beta-zero": "beta must be > 0",
    "unlearn-beta-nan": "beta must be a finite number",
    "unlearn-negative-lambda": "lambda_pl must be >= 0",
    "unlearn-zero-batch-size": "batch_size must be >= 1",
    "unlearn-tiny-max-length": "max_length must be >= 8",
    "unlearn-unknown-scheduler": "scheduler must be one of",
    "unlearn-unknown-dtype": "dtype must be one of",
    "unlearn-bad-lpl-space": ("lpl_space must be one of", "got 'probability'"),
    "unlearn-option-of-other-method": "--gamma does not apply to method 'tif'",
    "unlearn-lr-not-a-number": "argument --lr: invalid float value: 'fast'",
    "unlearn-not-annotated": "plain.jsonl:1: record has no unwanted-word annotation",
    "unlearn-bad-retain-json": "retain.jsonl:1: invalid JSON",
    "unlearn-graddiff-no-retain": "method 'graddiff' needs a retain set (--retain)",
    "unlearn-empty-refusals": "idk.jsonl: no refusals",
    "unlearn-refusals-bad-json": "idk.jsonl:2: invalid JSON object",
    "unlearn-unknown-identifier": "unknown identifier 'magic'",
    "unlearn-identifier-non-tif": "--identifier applies to --method tif",
    "unlearn-keep-best-no-eval": "--keep-best needs --eval-every",
    "unlearn-eval-data-missing": "no-tofu: TOFU data folder not found",
    "unlearn-eval-bad-split": "--forget-split must be forgetXX, got 'retain90'",
    "unlearn-out-is-a-file": "out.txt exists and is not a folder",
    "unlearn-out-is-the-model": "is the input model folder",
    "unlearn-out-not-empty": "is not empty (pass --overwrite",
    "unlearn-model-no-weights": "no-weights has no safetensors weights",
    "unlearn-model-pickle-only": "pass --allow-pickle to trust them",
    "unlearn-model-missing-path": "models/nope not found",
    "unlearn-model-is-a-file": "model.txt is not a folder",
    "unlearn-model-bad-config": "bad-config/config.json",
    "unlearn-model-no-tokenizer": "instantiate the backend tokenizer",
    "unlearn-tokenizer-too-large": "tokenizer has 400 tokens but the model has only 100",
    "unlearn-model-corrupt-weights": "the safetensors weights are damaged",
    "unlearn-model-wrong-shapes": "the weights' shapes do not match its config.json",
    "unlearn-yaml-syntax": "run.yaml: while parsing a flow sequence",
    "unlearn-yaml-not-mapping": "run.yaml must be a flat mapping of option: value",
    "unlearn-yaml-unknown-key": "unknown option(s) in config: lernrate",
    "unlearn-yaml-nested": "run.yaml must be a flat mapping of option: value",
    "unlearn-yaml-wrong-type": "option weight_decay: expected float, got 'many'",
    "unlearn-yaml-missing": "none.yaml not found",
    "unlearn-yaml-invalid-utf8": "run.yaml: 'utf-8' codec can't decode byte 0xe9",
    "unlearn-yaml-bad-value": "beta must be > 0",
    "unlearn-bad-field-map": "bad field map 'question'",
    "finetune-text-records": "shorter than one window of 256",
    "finetune-missing-data": "nope.jsonl: file not found",
    "finetune-data-is-directory": "data: is a directory",
    "finetune-negative-weight-decay": "weight_decay must be >= 0",
    "finetune-zero-grad-accum": "grad_accum must be >= 1",
    "finetune-negative-warmup": "warmup_epochs must be >= 0",
    "finetune-no-out": "--out is required",
    "tofu-data-dir-missing": "no-tofu: TOFU data folder not found",
    "tofu-split-file-missing": "TOFU split 'holdout01' not found",
    "tofu-ragged-perturbed": "different numbers of perturbed answers [4, 5]",
    "tofu-perturbed-not-list": "field 'perturbed_answer': expected a non-empty list of strings",
    "tofu-empty-split-file": "world_facts_perturbed.json: no records",
    "tofu-question-missing": "retain_perturbed:1: field 'question': missing or empty",
    "tofu-split-invalid-json": "real_authors_perturbed.json:1: invalid JSON",
    "tofu-bad-forget-split": "--forget-split must be forgetXX, got 'retain90'",
    "tofu-unknown-forget-split": "got 'forget07'",
    "tofu-zero-max-items": "--max-items must be >= 1",
    "tofu-zero-batch-size": "--batch-size, --generate-batch-size and --max-new-tokens must be >= 1",
    "tofu-out-is-directory": "results-dir is a folder",
    "tofu-retain-results-empty": "cannot read --retain-results",
    "tofu-retain-results-bad-json": "cannot read --retain-results",
    "tofu-retain-results-no-items": "the retain results hold no forget-set items",
    "tofu-retain-results-directory": "Is a directory",
    "tofu-retain-results-missing": "No such file or directory",
    "tofu-retain-results-wrong-size": "hold 3 forget-set items but 5 are evaluated here",
    "tofu-retain-results-bad-numbers": "not a `tif eval tofu` results file",
    "tofu-retain-model-and-results": "give --retain-model or --retain-results, not both",
    "tofu-model-no-weights": "no-weights has no safetensors weights",
    "tofu-tokenizer-too-large": "tokenizer has 400 tokens but the model has only 100",
    "muse-data-dir-missing": "no-muse/knowmem/forget_qa.json: MUSE split file not found",
    "muse-knowmem-file-missing": "knowmem/retain_qa.json: MUSE split file not found",
    "muse-split-not-array": "forget_qa.json: expected a non-empty JSON array",
    "muse-split-invalid-json": "verbmem/forget.json: cannot read MUSE split",
    "muse-verbmem-missing-gt": "verbmem/forget.json:1: expected prompt and gt strings",
    "muse-privleak-not-strings": "privleak/holdout.json: expected a JSON array of non-empty strings",
    "muse-unknown-corpus": "--corpus must be one of news, books",
    "muse-retain-auc-out-of-range": "--retain-auc must be in (0, 1)",
    "aggregate-missing-folder": ("TOFU evaluation logs not found", "no-logs"),
    "aggregate-empty-folder": "empty-logs: no eval_log_forget.json",
    "aggregate-log-invalid-json": "eval_log.json: not valid JSON",
    "aggregate-log-invalid-utf8": "eval_log.json: invalid UTF-8",
    "aggregate-log-not-object": "expected a JSON object of TOFU evaluation statistics",
    "aggregate-log-missing-key": "field 'rougeL_recall': missing or empty",
    "aggregate-log-indices-differ": "item indices differ from those of avg_gt_loss",
    "aggregate-log-not-numbers": "field 'avg_gt_loss': not numbers of one shape per item",
    "aggregate-retain-logs-missing": ("TOFU evaluation logs not found", "no-retain-logs"),
}


def ragged_perturbed() -> str:
    rows = perturbed_rows(FORGET, 5, True)
    rows[2]["perturbed_answer"] = rows[2]["perturbed_answer"][:4]
    return "".join(json.dumps(r) + "\n" for r in rows)


# --------------------------------------------------------------------------- the check


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every file and folder under ``roots``: kind, size, mtime and (files) sha256."""
    state = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = Path(folder, name)
                info = path.lstat()
                digest = None
                if path.is_file():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[str(path)] = (path.is_dir(), info.st_size, info.st_mtime_ns, digest)
        state[str(root)] = (True, None, root.stat().st_mtime_ns, None)
    return state


@pytest.mark.parametrize(("build", "why"), [(CASES[k], WHY[k]) for k in CASES], ids=list(CASES))
def test_malformed_input_fails_cleanly(build, why, tiny_model_dir, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TIF_CACHE_DIR", str(work / "cache"))
    monkeypatch.setenv("TIF_TOFU_DIR", str(work / "no-tofu-data"))
    argv = [str(a) for a in build(Workspace(work, tiny_model_dir))]
    before = snapshot(work, tiny_model_dir)
    capsys.readouterr()  # what building the inputs printed

    code = main(argv)

    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1, err[:MAX_ERROR_CHARS]
    assert lines[0].startswith("tif: error: ") and len(lines[0]) > len("tif: error: ")
    assert len(lines[0]) < MAX_ERROR_CHARS, lines[0][:MAX_ERROR_CHARS]
    for fragment in (why,) if isinstance(why, str) else why:
        assert fragment in lines[0], f"expected {fragment!r} in: {lines[0][:MAX_ERROR_CHARS]}"
    assert out == ""
    assert snapshot(work, tiny_model_dir) == before


def test_there_are_at_least_fifty_cases():
    assert len(CASES) >= 50
    documented = {line.split()[0] for line in __doc__.splitlines() if line.startswith("    ")}
    assert documented == set(CASES)
    assert set(WHY) == set(CASES)  # every case says why it fails
