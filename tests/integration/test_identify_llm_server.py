"""The llm identifier against a real local HTTP server speaking the OpenAI chat API.

The server (:mod:`chat_server`) answers ``POST /v1/chat/completions`` with either a tiny random
Llama's real generation (junk, which must become per-sample failures) or a deterministic
rule-based responder standing in for a small model (the capitalised words of the answer, as
fenced JSON).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import pytest
import torch

from chat_server import ChatServer, capitalised_words
from conftest import QA_PAIRS
from tif_unlearn.data.records import QARecord
from tif_unlearn.errors import TifError
from tif_unlearn.identify import identify

SECRET = "sk-test-4f1c9b7e-do-not-leak"
RECORDS = [QARecord(r["question"], r["answer"]) for r in QA_PAIRS]


def tiny_model_responder(model, tokenizer) -> Callable[[str], str]:
    """A real (random) model call: greedy generation from the prompt's last tokens."""

    def respond(prompt: str) -> str:
        ids = tokenizer(prompt, return_tensors="pt").input_ids[:, -48:]
        with torch.inference_mode():
            out = model.generate(
                ids, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)

    return respond


def run(server: ChatServer, tmp_path, **options):
    settings = dict(
        api_base=server.api_base,
        api_model="tiny",
        cache_dir=tmp_path / "cache",
        backoff=0.001,
        timeout=10,
        progress=False,
    )
    return identify("llm", RECORDS, **{**settings, **options})


def _texts(record) -> list[str]:
    return [record.target[a:b] for a, b in record.unwanted_spans]


def test_rule_based_server_end_to_end(tmp_path):
    with ChatServer(capitalised_words) as server:
        result = run(server, tmp_path)
    assert not result.failures
    assert _texts(result.records[0]) == ["Kuwait City"]
    assert _texts(result.records[2]) == ["Edgar Award"]
    # ["The", "Silent", "Harbor"]: every occurrence of "The" is marked, then joined
    assert _texts(result.records[3]) == ["The", "The Silent Harbor"]
    bodies = [r["body"] for r in server.requests]
    assert all(b["model"] == "tiny" and b["temperature"] == 0 for b in bodies)
    assert any("Where was Basil born?" in b["messages"][-1]["content"] for b in bodies)


def test_junk_from_a_real_tiny_model_is_a_failure_per_sample(tmp_path, tiny_model, tokenizer):
    with ChatServer(tiny_model_responder(tiny_model, tokenizer)) as server:
        result = run(server, tmp_path, workers=2)
    assert len(server.requests) == len(RECORDS)
    assert [i for i, _ in result.failures] == list(range(len(RECORDS)))
    assert all("reply" in why or "listed strings" in why for _, why in result.failures)
    assert result.records == RECORDS  # unchanged: not annotated


def test_server_errors_are_retried_then_succeed(tmp_path):
    with ChatServer(capitalised_words, fail_first=3) as server:
        result = run(server, tmp_path, workers=1, max_retries=3)
    assert not result.failures
    assert len(server.requests) == len(RECORDS) + 3


def test_exhausted_retries_fail_samples_and_the_run_goes_on(tmp_path):
    with ChatServer(capitalised_words, fail_first=2, status=429) as server:
        result = run(server, tmp_path, workers=1, max_retries=0)
    assert [i for i, _ in result.failures] == [0, 1]
    assert "HTTP 429 after 1 attempts" in result.failures[0][1]
    assert _texts(result.records[2]) == ["Edgar Award"]


def test_unreachable_endpoint_fails_every_sample(tmp_path):
    with ChatServer(capitalised_words) as server:
        api_base = server.api_base
    closed = ChatServer(capitalised_words)
    closed.httpd.server_close()
    result = identify(
        "llm",
        RECORDS[:2],
        api_base=api_base,
        api_model="x",
        cache_dir=tmp_path,
        max_retries=1,
        backoff=0.001,
        timeout=2,
        progress=False,
    )
    assert [i for i, _ in result.failures] == [0, 1]
    assert "after 2 attempts" in result.failures[0][1]


def test_api_key_is_sent_but_never_written(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    with ChatServer(capitalised_words, fail_first=1, status=400) as server:
        result = run(server, tmp_path)
    assert {r["headers"]["Authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    assert len(result.failures) == 1 and "***" in result.failures[0][1]  # echoed, redacted
    cache_text = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    out = capsys.readouterr()
    for where in (cache_text, out.out, out.err, caplog.text, repr(result)):
        assert SECRET not in where


def test_refused_key_stops_the_run_without_leaking_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    server = ChatServer(capitalised_words, fail_first=99, status=401)
    with server, pytest.raises(TifError, match="HTTP 401") as info:
        run(server, tmp_path)
    assert SECRET not in str(info.value) and "***" in str(info.value)


def test_cache_makes_a_rerun_free(tmp_path):
    with ChatServer(capitalised_words) as server:
        first = run(server, tmp_path)
        assert len(server.requests) == len(RECORDS)
        second = run(server, tmp_path)
        assert len(server.requests) == len(RECORDS)  # nothing sent the second time
        assert second.records == first.records
        run(server, tmp_path, api_model="another-model")
        assert len(server.requests) == 2 * len(RECORDS)  # keyed by model name too
        run(server, tmp_path, use_cache=False)
        assert len(server.requests) == 3 * len(RECORDS)
    assert (tmp_path / "cache" / "replies.jsonl").is_file()


def test_cache_dir_defaults_under_tif_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TIF_CACHE_DIR", str(tmp_path / "tif"))
    with ChatServer(capitalised_words) as server:
        run(server, tmp_path, cache_dir=None)
    assert (tmp_path / "tif" / "identify-llm" / "replies.jsonl").is_file()


def test_local_hf_backend_runs_a_tiny_model(tiny_model, tokenizer, tmp_path):
    result = identify(
        "llm",
        RECORDS[:3],
        model=tiny_model,
        tokenizer=tokenizer,
        batch_size=2,
        max_new_tokens=8,
        cache_dir=tmp_path,
        progress=False,
    )
    assert len(result.records) == 3
    assert len(result.failures) + result.n_ok == 3  # junk replies are failures, not crashes
    assert not (tmp_path / "replies.jsonl").exists()  # unnamed model objects are not cached
    assert tokenizer.padding_side == "right"  # restored after left-padded generation


def passage_names(prompt: str) -> str:
    """Rule-based stand-in for a text prompt: the capitalised words of the passage."""
    passage = prompt.split("Passage:\n", 1)[1].split("\n\nReply with", 1)[0]
    return json.dumps(re.findall(r"\b[A-Z][a-z]+\b", passage))


def test_long_text_is_sent_in_chunks_and_spans_map_back(tmp_path):
    from tif_unlearn.data.records import TextRecord

    paragraphs = [f"Reporter {name} wrote from the city of {name}ville." for name in "ABCDEF"]
    paragraphs = [p.replace(" A", " Alma").replace(" B", " Bern") for p in paragraphs]
    text = "\n\n".join(paragraphs)
    with ChatServer(passage_names) as server:
        result = identify(
            "llm",
            [TextRecord(text)],
            api_base=server.api_base,
            api_model="tiny",
            cache_dir=tmp_path,
            chunk_chars=120,
            progress=False,
        )
    prompts = [r["body"]["messages"][-1]["content"] for r in server.requests]
    assert len(prompts) > 1 and all("Question:" not in p for p in prompts)
    assert not result.failures
    # every capitalised word of the text, at its offset in the full text (joined spans aside)
    covered = {i for a, b in result.records[0].unwanted_spans for i in range(a, b)}
    names = [m.span() for m in re.finditer(r"\b[A-Z][a-z]+\b", text)]
    assert covered == {i for a, b in names for i in range(a, b)} | {
        b for (_, b), (c, _) in zip(names, names[1:], strict=False) if c == b + 1
    }
