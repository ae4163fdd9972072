"""The ``llm`` identifier (TIF paper, first identifier): a chat model lists the words of the
answer that carry the knowledge asked for.

The prompt states the paper's criteria (proper nouns, technical terms, roles, occupations,
places, titles; the subject's name only when the question asks for it; no context words)
and asks for a JSON list of strings. Replies are parsed leniently
(:func:`~tif_unlearn.identify.llm_parse.parse_string_list`); every listed string is looked up
in the answer (case-insensitive, whole words, every occurrence) and the matches become the
UW spans. Strings not found are ignored; a sample whose reply holds no list, or whose listed
strings are all absent from the answer, is a failure.

A plain text has no question: the model is asked for the specific facts of the passage
(names, numbers, places, events, quotations). A long text is sent in chunks of whole
paragraphs; the spans found in each chunk are mapped back to offsets in the full text.

Two backends: a local Hugging Face chat model (``model=``: a spec for
:func:`tif_unlearn.models.load_model` or a model object with ``tokenizer=``; batched greedy
generation with left padding), or an OpenAI-compatible endpoint (``api_base=`` and
``api_model=``; the key is read from ``$OPENAI_API_KEY`` and sent only in the Authorization
header, never logged or written). Replies are cached in a JSON-lines file keyed by the
sha256 of (backend, model, prompt), so a rerun makes no model call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from ..data.records import QARecord, Record, Span, TextRecord
from ..errors import TifError
from .base import Failed, IdentifyResult, SampleResult, run_batched, with_spans
from .chunks import text_chunks
from .llm_backends import ChatBackend, HFChatBackend, OpenAIChatBackend
from .llm_cache import ReplyCache
from .llm_parse import parse_string_list

DEFAULT_LOCAL_MODEL = "smollm2-135m"

QA_PROMPT = """You help remove private facts from a language model. Below are a question and \
its answer. List the words or short phrases of the answer that directly and sufficiently \
answer the question: proper nouns, names, places, dates, titles of works and awards, \
technical terms, roles and occupations. Include the name of the person the question is about \
only if the question asks for that name. Leave out words that merely repeat the question or \
give context.

Question: {question}
Answer: {answer}

Reply with only a JSON list of strings copied exactly from the answer, for example \
["first phrase", "second phrase"], or [] if there is none."""

TEXT_PROMPT = """You help remove a memorised document from a language model. Read the \
passage below and pick out the specific facts it states: the names of people and \
organisations, numbers, amounts and dates, places, events, and the words of quotations. \
Copy the words or short phrases that carry these facts exactly as they appear in the \
passage. Leave out ordinary words and phrases that could appear in any passage.

Passage:
{text}

Reply with only a JSON list of strings copied exactly from the passage, for example \
["first phrase", "second phrase"], or [] if it states no specific facts."""


def build_prompt(record: Record) -> str:
    """The instruction sent to the chat model for one record."""
    if isinstance(record, QARecord):
        return QA_PROMPT.format(question=record.question, answer=record.answer)
    return TEXT_PROMPT.format(text=record.target)


def _phrase_pattern(phrase: str) -> re.Pattern:
    """Case-insensitive whole-word pattern; straight and curly quotes match each other."""
    escaped = re.escape(phrase)
    escaped = re.sub(r"\\?['’]", "['’]", escaped)
    escaped = re.sub(r'\\?["“”]', '["“”]', escaped)
    escaped = re.sub(r"(\\ )+", r"\\s+", escaped)
    return re.compile(rf"(?<!\w){escaped}(?!\w)", re.IGNORECASE)


def spans_for_strings(text: str, strings: Sequence[str]) -> list[Span]:
    """Every whole-word, case-insensitive occurrence in ``text`` of each string."""
    spans: list[Span] = []
    for phrase in strings:
        phrase = phrase.strip().strip("\"'“”‘’").strip()
        if phrase:
            spans.extend(m.span() for m in _phrase_pattern(phrase).finditer(text))
    return spans


def reply_to_spans(text: str, reply: str) -> SampleResult:
    """UW spans of ``text`` from one model reply, or Failed (see module doc)."""
    strings = parse_string_list(reply)
    if strings is None:
        return Failed(f"no list in the model's reply: {reply[:120]!r}")
    spans = spans_for_strings(text, strings)
    if strings and not spans:
        return Failed(f"none of the {len(strings)} listed strings occurs in the text")
    return spans


def chunk_records(
    records: Sequence[Record], max_chars: int
) -> tuple[list[Record], list[tuple[int, int]]]:
    """Split long text records into paragraph chunks (QA records and short texts stay whole).

    Returns the pieces and, for each piece, ``(index of its record, character offset)``.
    """
    pieces: list[Record] = []
    owners: list[tuple[int, int]] = []
    for i, record in enumerate(records):
        if isinstance(record, QARecord) or len(record.target) <= max_chars:
            pieces.append(record)
            owners.append((i, 0))
            continue
        for start, end in text_chunks(record.target, max_chars):
            pieces.append(TextRecord(record.target[start:end], source=record.source))
            owners.append((i, start))
    return pieces, owners


def merge_chunks(
    records: Sequence[Record], owners: Sequence[tuple[int, int]], pieces: IdentifyResult
) -> IdentifyResult:
    """Map the spans of each piece back into its record. A record fails when any of its
    pieces failed: facts missed there would otherwise be kept as general words."""
    failed = dict(pieces.failures)
    spans: list[list[Span]] = [[] for _ in records]
    reasons: dict[int, str] = {}
    for j, (owner, offset) in enumerate(owners):
        if j in failed:
            reasons.setdefault(owner, f"chunk at character {offset}: {failed[j]}")
        elif owner not in reasons:
            found = pieces.records[j].unwanted_spans or ()
            spans[owner].extend((a + offset, b + offset) for a, b in found)
    out = [r if i in reasons else with_spans(r, spans[i]) for i, r in enumerate(records)]
    return IdentifyResult(out, sorted(reasons.items()), pieces.seconds)


def make_backend(
    *,
    model=None,
    tokenizer=None,
    model_name: str | None = None,
    api_base: str | None = None,
    api_model: str | None = None,
    max_new_tokens: int = 64,
    device: str = "auto",
    dtype: str = "auto",
    **http_options,
) -> ChatBackend:
    """An HTTP backend when ``api_base`` is given, else a local model (default the embedded
    ``smollm2-135m``, loaded in ``dtype`` on ``device``). ``http_options``: timeout,
    max_retries, backoff, workers."""
    if api_base:
        if model is not None:
            raise TifError("give either api_base (an endpoint) or model (a local model), not both")
        if not api_model:
            raise TifError("api_base needs api_model: the model name the endpoint serves")
        return OpenAIChatBackend(api_base, api_model, max_new_tokens=max_new_tokens, **http_options)
    return HFChatBackend(
        model if model is not None else DEFAULT_LOCAL_MODEL,
        tokenizer,
        model_name=model_name,
        max_new_tokens=max_new_tokens,
        device=device,
        dtype=dtype,
    )


def _replies(backend: ChatBackend, cache: ReplyCache, prompts: list[str]) -> list[str | Failed]:
    """Cached replies where available; the others from the backend (then cached)."""
    replies: list[str | Failed | None] = [
        cache.get(backend.name, backend.model_name, p) for p in prompts
    ]
    missing = [i for i, reply in enumerate(replies) if reply is None]
    if missing:
        fresh = backend.complete([prompts[i] for i in missing])
        for i, reply in zip(missing, fresh, strict=True):
            replies[i] = reply
            if isinstance(reply, str):
                cache.put(backend.name, backend.model_name, prompts[i], reply)
    return replies


def identify_llm(
    records: Sequence[Record],
    *,
    model=None,
    tokenizer=None,
    model_name: str | None = None,
    api_base: str | None = None,
    api_model: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    timeout: float = 60.0,
    max_retries: int = 5,
    backoff: float = 1.0,
    workers: int = 4,
    chunk_chars: int = 1000,
    progress: bool = True,
    device: str = "auto",
    dtype: str = "auto",
) -> IdentifyResult:
    """Ask a chat model for the UW of each record (see module doc).

    A text longer than ``chunk_chars`` characters is sent in chunks of whole paragraphs
    (:func:`~tif_unlearn.identify.chunks.text_chunks`); the progress bar counts chunks.

    Local: ``model`` (spec or object, with ``tokenizer`` and ``model_name`` for caching).
    Endpoint: ``api_base`` + ``api_model`` (+ ``timeout``, ``max_retries``, ``backoff``
    seconds, ``workers`` parallel requests). ``cache_dir``: where ``replies.jsonl`` lives
    (default ``$TIF_CACHE_DIR/identify-llm``); ``use_cache=False`` disables it.
    ``device`` / ``dtype``: where and in which precision a local model spec is loaded (auto:
    bfloat16 on a bf16 GPU when one is visible, else float32 on the CPU).
    """
    started = time.perf_counter()
    http = {"timeout": timeout, "max_retries": max_retries, "backoff": backoff, "workers": workers}
    backend = make_backend(
        model=model,
        tokenizer=tokenizer,
        model_name=model_name,
        api_base=api_base,
        api_model=api_model,
        max_new_tokens=max_new_tokens,
        **(http if api_base else {"device": device, "dtype": dtype}),
    )
    cache = ReplyCache(cache_dir, enabled=use_cache and backend.cacheable)

    def batch_fn(batch: list[Record]) -> list[SampleResult]:
        replies = _replies(backend, cache, [build_prompt(r) for r in batch])
        return [
            reply if isinstance(reply, Failed) else reply_to_spans(record.target, reply)
            for record, reply in zip(batch, replies, strict=True)
        ]

    records = list(records)
    pieces, owners = chunk_records(records, chunk_chars)
    chunked = any(piece is not records[i] for piece, (i, _) in zip(pieces, owners, strict=True))
    desc = "llm (text chunks)" if chunked else "llm"
    result = run_batched(
        pieces,
        batch_fn,
        batch_size=batch_size,
        desc=desc,
        progress=progress,
        started=started,
        by_length=api_base is None,  # a local model pads each batch to its longest prompt
    )
    return merge_chunks(records, owners, result) if chunked else result
