"""Chat backends for the ``llm`` identifier: a local Hugging Face model or an
OpenAI-compatible HTTP endpoint. ``complete(prompts)`` returns one reply (or Failed) per
prompt; a configuration problem (no such model, a refused API key) raises TifError.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import torch

from ..data.encoding import render_chat
from ..errors import TifError
from .base import Failed

RETRY_HTTP_CODES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
FATAL_HTTP_CODES = {401: "the API key was refused", 403: "access denied", 404: "not found"}
API_KEY_ENV = "OPENAI_API_KEY"
MAX_BACKOFF_S = 60.0


class ChatBackend(Protocol):
    name: str
    model_name: str
    cacheable: bool

    def complete(self, prompts: list[str]) -> list[str | Failed]: ...


class HFChatBackend:
    """Greedy, batched, left-padded generation with a local causal LM."""

    name = "hf"

    def __init__(
        self,
        model,
        tokenizer=None,
        *,
        model_name=None,
        max_new_tokens: int = 64,
        device: str = "auto",
        dtype: str = "auto",
    ):
        if isinstance(model, str):  # loaded in dtype (auto: bf16 on a bf16 GPU) on device
            from .loading import load_on_device

            model_name = model_name or model
            model, tokenizer = load_on_device(model, device=device, dtype=dtype)
        if tokenizer is None:
            raise TifError("pass tokenizer= together with a model object")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.model_name = model_name or ""
        self.cacheable = bool(model_name)  # an unnamed model object cannot be keyed reliably
        self.max_new_tokens = max_new_tokens

    def _render(self, prompt: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return render_chat(self.tokenizer, [{"role": "user", "content": prompt}])
        return prompt + "\n"

    def _encode(self, prompts: list[str]):
        tok, side = self.tokenizer, self.tokenizer.padding_side
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"
        try:
            special = not getattr(tok, "chat_template", None)
            texts = [self._render(p) for p in prompts]
            return tok(texts, return_tensors="pt", padding=True, add_special_tokens=special)
        finally:
            tok.padding_side = side

    def complete(self, prompts: list[str]) -> list[str | Failed]:
        enc = self._encode(prompts).to(next(self.model.parameters()).device)
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
            )  # (B, prompt + new)
        new_tokens = out[:, enc["input_ids"].shape[1] :]
        return list(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _retry_after(err: urllib.error.HTTPError) -> float | None:
    value = err.headers.get("Retry-After") if err.headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class OpenAIChatBackend:
    """POST ``{api_base}/chat/completions`` (temperature 0) with retries and back-off.

    HTTP 408/409/425/429/5xx, connection errors and timeouts are retried ``max_retries``
    times, waiting ``backoff * 2**attempt`` seconds (or the server's Retry-After). HTTP
    401/403/404 stop the run (TifError); other errors fail the sample. The API key
    (``$OPENAI_API_KEY``, optional) is sent only in the Authorization header and redacted
    from every error message.
    """

    name = "openai"
    cacheable = True

    def __init__(
        self,
        api_base: str,
        api_model: str,
        *,
        max_new_tokens: int = 64,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        workers: int = 4,
    ):
        self.url = api_base.rstrip("/") + "/chat/completions"
        self.model_name = api_model
        self.max_new_tokens, self.timeout = max_new_tokens, timeout
        self.max_retries, self.backoff, self.workers = max_retries, backoff, max(1, workers)

    def complete(self, prompts: list[str]) -> list[str | Failed]:
        with ThreadPoolExecutor(max_workers=min(self.workers, len(prompts) or 1)) as pool:
            return list(pool.map(self._ask, prompts))

    def _request(self, prompt: str) -> urllib.request.Request:
        body = {
            "model": self.model_name,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": self.max_new_tokens,
        }
        headers = {"Content-Type": "application/json", "User-Agent": "tif-unlearn"}
        key = os.environ.get(API_KEY_ENV)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode("utf-8")
        return urllib.request.Request(self.url, data=data, headers=headers, method="POST")

    def _ask(self, prompt: str) -> str | Failed:
        """One chat completion with retries; the reply's text or Failed."""
        secret = os.environ.get(API_KEY_ENV)
        for attempt in range(self.max_retries + 1):
            try:
                with urllib.request.urlopen(self._request(prompt), timeout=self.timeout) as resp:
                    return _reply_text(resp.read(), secret)
            except urllib.error.HTTPError as err:
                problem = self._http_problem(err, secret)
                if problem is not None or attempt == self.max_retries:
                    return problem or Failed(f"HTTP {err.code} after {attempt + 1} attempts")
                delay = _retry_after(err)
            except OSError as err:  # URLError, timeouts, refused or reset connections
                if attempt == self.max_retries:
                    reason = _redact(str(getattr(err, "reason", err)), secret)
                    return Failed(
                        f"no answer from {self.url} after {attempt + 1} attempts: {reason}"
                    )
                delay = None
            time.sleep(
                min(MAX_BACKOFF_S, delay if delay is not None else self.backoff * 2**attempt)
            )
        return Failed("unreachable")  # pragma: no cover

    def _http_problem(self, err: urllib.error.HTTPError, secret: str | None) -> Failed | None:
        """None when the error should be retried; Failed for a per-sample error; raises
        TifError for a configuration error."""
        if err.code in RETRY_HTTP_CODES:
            return None
        detail = _redact(_error_body(err), secret)
        if err.code in FATAL_HTTP_CODES:
            raise TifError(
                f"{self.url} (model {self.model_name!r}): HTTP {err.code}, "
                f"{FATAL_HTTP_CODES[err.code]}: {detail}"
            )
        return Failed(f"HTTP {err.code}: {detail}")


def _error_body(err: urllib.error.HTTPError) -> str:
    try:
        return err.read().decode("utf-8", "replace").strip()[:200]
    except Exception:
        return ""


def _reply_text(raw: bytes, secret: str | None) -> str | Failed:
    """``choices[0].message.content`` of a chat-completion response."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return Failed(_redact(f"unexpected response from the endpoint: {raw[:120]!r}", secret))
    return content if isinstance(content, str) else Failed("the reply has no text content")
