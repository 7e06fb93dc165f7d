"""A fake OpenAI-compatible server on 127.0.0.1: ``POST /v1/chat/completions``, plain or streamed
(``stream: true``: server-sent events, with a last usage chunk when
``stream_options.include_usage`` is set), served over real HTTP so the real ``openai`` client
(and the instrumentations wrapping it) talk to it.

The answer is chosen per request by a marker in the last user message: ``[normal]``,
``[length]`` (truncated: finish reason ``length``), ``[empty]`` (empty content),
``[error500]`` (HTTP 500), ``[slow]`` (a normal answer after :data:`SLOW_S`) and ``[refusal]``
(``I'm sorry, but I can't help with that.``). Without a marker the answer is normal.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal

Answer = Literal["normal", "length", "empty", "error500", "slow", "refusal"]
ANSWERS: Final[tuple[Answer, ...]] = ("normal", "length", "empty", "error500", "slow", "refusal")
SLOW_S: Final = 0.75
"""How long a ``[slow]`` answer takes (set the latency SLO below it, and well above a normal
answer's few milliseconds)."""
MODEL: Final = "gpt-4o-mini-2024-07-18"
NORMAL_TEXT: Final = "Your order ships tomorrow."
LENGTH_TEXT: Final = "Your order ships to"
REFUSAL_TEXT: Final = "I'm sorry, but I can't help with that."
PROMPT_TOKENS: Final = 21
_MARKER: Final = re.compile(r"\[(normal|length|empty|error500|slow|refusal)\]")


def answer_of(body: dict[str, Any]) -> Answer:
    """The answer a request asks for: the marker in its last user message."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            match = _MARKER.search(str(message.get("content")))
            return match[1] if match else "normal"  # type: ignore[return-value]
    return "normal"


def _content(answer: Answer) -> tuple[str, str]:
    """(text, finish reason) of an answer."""
    if answer == "length":
        return LENGTH_TEXT, "length"
    if answer == "empty":
        return "", "stop"
    if answer == "refusal":
        return REFUSAL_TEXT, "stop"
    return NORMAL_TEXT, "stop"


def _usage(text: str) -> dict[str, Any]:
    completion = len(text.split())
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion,
        "total_tokens": PROMPT_TOKENS + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def completion(answer: Answer, number: int) -> dict[str, Any]:
    """The ``chat.completion`` object of an answer."""
    text, finish = _content(answer)
    return {
        "id": f"chatcmpl-fake{number}",
        "object": "chat.completion",
        "created": 1_764_072_000,
        "model": MODEL,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": _usage(text),
    }


def chunks(answer: Answer, number: int, include_usage: bool) -> Iterator[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a streamed answer."""
    text, finish = _content(answer)
    base = {
        "id": f"chatcmpl-fake{number}",
        "object": "chat.completion.chunk",
        "created": 1_764_072_000,
        "model": MODEL,
        "system_fingerprint": "fp_fake",
    }
    pieces = [{"role": "assistant", "content": ""}]
    pieces += [{"content": word} for word in re.findall(r"\S+\s*", text)]
    for delta in pieces:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        yield {**base, "choices": [choice]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                "finish_reason": finish}]}  # fmt: skip
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(text)}


class FakeOpenAI:
    """The server, in a thread; ``base_url`` is what ``openai.OpenAI(base_url=...)`` takes."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _record(self, body: dict[str, Any]) -> int:
        with self._lock:
            self.requests.append(body)
            return len(self.requests)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests' output is not the place for an access log."""

            def _json(self, status: int, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                number = fake._record(body)
                answer = answer_of(body)
                if answer == "error500":
                    error = {"message": "The server had an error", "type": "server_error",
                             "param": None, "code": None}  # fmt: skip
                    self._json(500, {"error": error})
                    return
                if answer == "slow":
                    time.sleep(SLOW_S)
                if not body.get("stream"):
                    self._json(200, completion(answer, number))
                    return
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for chunk in chunks(answer, number, include_usage):
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
