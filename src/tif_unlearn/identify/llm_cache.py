"""A JSON-lines cache of chat-model replies, keyed by sha256 of (backend, model, prompt).

One line per reply: ``{"key": ..., "backend": ..., "model": ..., "reply": ...}``. The file is
appended to as replies arrive, so an interrupted run keeps what it paid for. Nothing secret is
stored (the prompt itself is not, only its hash).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CACHE_FILE = "replies.jsonl"


def default_cache_dir() -> Path:
    """``$TIF_CACHE_DIR/identify-llm`` (default ``~/.cache/tif-unlearn/identify-llm``)."""
    from ..models import cache_dir

    return cache_dir() / "identify-llm"


def cache_key(backend: str, model: str, prompt: str) -> str:
    payload = json.dumps([backend, model, prompt], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ReplyCache:
    """Replies already obtained, loaded from and appended to ``folder/replies.jsonl``."""

    def __init__(self, folder: str | os.PathLike[str] | None = None, *, enabled: bool = True):
        self.path = Path(folder or default_cache_dir()) / CACHE_FILE
        self.enabled = enabled
        self.replies: dict[str, str] = self._load() if enabled else {}

    def _load(self) -> dict[str, str]:
        replies: dict[str, str] = {}
        if not self.path.is_file():
            return replies
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                replies[row["key"]] = row["reply"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash: ignore it
        return replies

    def get(self, backend: str, model: str, prompt: str) -> str | None:
        return self.replies.get(cache_key(backend, model, prompt)) if self.enabled else None

    def put(self, backend: str, model: str, prompt: str, reply: str) -> None:
        if not self.enabled:
            return
        key = cache_key(backend, model, prompt)
        self.replies[key] = reply
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"key": key, "backend": backend, "model": model, "reply": reply}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
