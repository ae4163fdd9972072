"""A local OpenAI-compatible chat endpoint for tests (no network needed).

The server (http.server on 127.0.0.1, a free port, one thread per request) answers
``POST /v1/chat/completions`` with ``respond(user_message)``. It counts requests, can fail the
first N with an HTTP error whose body echoes the Authorization header it received (a leaky
server), and records the headers. ``capitalised_words`` is a deterministic rule-based
responder standing in for a small model.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    """A local OpenAI-compatible endpoint; ``respond(user_message) -> reply text``."""

    def __init__(
        self,
        respond: Callable[[str], str],
        *,
        fail_first: int = 0,
        status: int = 500,
        retry_after: float | None = None,
    ):
        self.respond, self.fail_first, self.status = respond, fail_first, status
        self.retry_after = retry_after  # sent as Retry-After with failures (fast retries)
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"headers": dict(self.headers), "body": body})
                    failing = len(server.requests) <= server.fail_first
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "no such route"})
                if failing:
                    echo = f"failure, your header was {self.headers.get('Authorization')}"
                    return self._send(server.status, {"error": echo})
                content = server.respond(body["messages"][-1]["content"])
                reply = {"choices": [{"message": {"role": "assistant", "content": content}}]}
                self._send(200, reply)

            def _send(self, code: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code != 200 and server.retry_after is not None:
                    self.send_header("Retry-After", str(server.retry_after))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def capitalised_words(prompt: str) -> str:
    """Rule-based stand-in for a small model: the answer's capitalised words after the first."""
    answer = re.search(r"^Answer: (.*)$", prompt, re.M).group(1)
    found = re.findall(r"\b[A-Z][\w-]*", answer)[1:]
    return "```json\n" + json.dumps(found) + ",\n```"  # fenced, with a stray comma
