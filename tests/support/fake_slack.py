"""A fake Slack on 127.0.0.1: ``chat.postMessage``, ``chat.update``, ``conversations.history``,
``conversations.replies``, ``conversations.list`` and an incoming webhook, served over real HTTP so the real slack-sdk
client talks to it.

It behaves like Slack where the notifiers depend on it: answers carry the channel *id*
(``chat.update`` wants the id, not ``#name``), messages keep their thread replies, updating an
unknown message is ``message_not_found``, a payload over a Block Kit limit is
``invalid_blocks``, message metadata is kept and read back only with ``include_all_metadata``. It records every request, and can be told to fail the next calls
(a 5xx, a 429 with Retry-After, an ``ok: false`` error).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

import pytest

FIRST_TS_US = 1_732_550_000_000_100
TOKEN = "xoxb-fake-token"


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: the strictest way Slack may count characters."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _text_problems(where: str, obj: Any, limit: int, kinds: tuple[str, ...]) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        return [f"{where}: not a {'/'.join(kinds)} text object"]
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        return [f"{where}: empty text"]
    if utf16_len(text) > limit:
        return [f"{where}: {utf16_len(text)} > {limit} characters"]
    return []


def block_kit_problems(text: Any, blocks: Any) -> list[str]:
    """Every Block Kit limit the payload breaks (empty when Slack would accept it)."""
    problems: list[str] = []
    if not isinstance(text, str) or not text.strip():
        problems.append("fallback text: empty")
    elif utf16_len(text) > 4000:
        problems.append("fallback text: over 4000 characters")
    if blocks is None:
        return problems
    if not isinstance(blocks, list) or len(blocks) > 50:
        return [*problems, "blocks: not a list of at most 50"]
    text_kinds = ("plain_text", "mrkdwn")
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"block {i} ({kind})"
        if kind == "header":
            problems += _text_problems(where, block.get("text"), 150, ("plain_text",))
        elif kind == "section":
            fields = block.get("fields", [])
            if "text" not in block and not fields:
                problems.append(f"{where}: neither text nor fields")
            if "text" in block:
                problems += _text_problems(where, block["text"], 3000, text_kinds)
            if len(fields) > 10:
                problems.append(f"{where}: {len(fields)} > 10 fields")
            for j, item in enumerate(fields):
                problems += _text_problems(f"{where} field {j}", item, 2000, text_kinds)
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 10:
                problems.append(f"{where}: {len(elements)} elements (1 to 10)")
            for j, item in enumerate(elements):
                problems += _text_problems(f"{where} element {j}", item, 3000, text_kinds)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 25:
                problems.append(f"{where}: {len(elements)} elements (1 to 25)")
            ids = [e.get("action_id") for e in elements]
            if len(set(ids)) != len(ids):
                problems.append(f"{where}: duplicate action_id")
            for j, button in enumerate(elements):
                problems += _text_problems(
                    f"{where} button {j}", button.get("text"), 75, ("plain_text",)
                )
                url = button.get("url", "")
                if not re.match(r"https?://", url) or utf16_len(url) > 3000:
                    problems.append(f"{where} button {j}: bad url")
        elif kind != "divider":
            problems.append(f"{where}: unknown block type")
    return problems


@dataclass(frozen=True)
class Request:
    """One request as the fake received it."""

    method: str
    """The API method (``chat.postMessage``) or ``webhook``."""
    payload: dict[str, Any]
    authorization: str | None
    content_type: str


@dataclass
class Message:
    """A message in a channel, with its thread replies (in order) and how often it was edited."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None = None
    edits: int = 0
    replies: list[Message] = field(default_factory=list)
    metadata: dict[str, Any] | None = None

    def listed(self, with_metadata: bool) -> dict[str, Any]:
        """As ``conversations.history`` and ``conversations.replies`` list it."""
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata is not None:
            out["metadata"] = self.metadata
        return out


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: float | None
    error: str | None
    method: str | None = None
    """Only this method fails (other requests pass it by); None: the next request, any."""


def channel_id(channel: str) -> str:
    """The id Slack answers with: ids stay, ``#name`` maps to a stable ``C…`` id."""
    if re.fullmatch(r"[CGD][A-Z0-9]{8,}", channel):
        return channel
    return "C" + hashlib.sha1(channel.lstrip("#").encode()).hexdigest()[:10].upper()


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (for connection-refused tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class FakeSlack:
    """The fake server; ``with FakeSlack() as slack:`` starts and stops it."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._messages: dict[tuple[str, str], Message] = {}
        self._names: dict[str, str] = {}
        """Channel id -> name, for every channel posted to by ``#name``."""
        self._failures: deque[_Failure] = deque()
        self._next_ts = FIRST_TS_US
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """For ``AsyncWebClient(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook/T0001/B0001/fakesecret"

    # ------------------------------------------------------------------ scripting, inspection

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        retry_after: float | None = None,
        error: str | None = None,
        method: str | None = None,
    ) -> None:
        """The next ``count`` requests (of ``method``, when given) answer ``status`` (with
        Retry-After, when given); ``status=200, error="channel_not_found"`` is an ``ok: false``
        API error."""
        with self._lock:
            self._failures.extend([_Failure(status, retry_after, error, method)] * count)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def calls(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]

    @property
    def messages(self) -> list[Message]:
        """Top-level messages, oldest first (replies live in ``Message.replies``)."""
        with self._lock:
            return [m for m in self._messages.values() if m.thread_ts is None]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            return self._messages[(channel, ts)]

    # ------------------------------------------------------------------ the API

    def handle(
        self, method: str, payload: dict[str, Any], authorization: str | None, content_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Record the request and answer it: (status, headers, body)."""
        webhook = method == "webhook"
        with self._lock:
            self._requests.append(Request(method, payload, authorization, content_type))
            failure = None
            if self._failures and self._failures[0].method in (None, method):
                failure = self._failures.popleft()
            if failure is not None:
                return self._failed(failure, webhook)
            if webhook:
                return self._webhook(payload)
            if authorization is None:
                answer: dict[str, Any] = {"ok": False, "error": "not_authed"}
            elif authorization != f"Bearer {self.token}":
                answer = {"ok": False, "error": "invalid_auth"}
            elif method == "chat.postMessage":
                answer = self._post(payload)
            elif method == "chat.update":
                answer = self._update(payload)
            elif method == "conversations.list":
                answer = {"ok": True, "channels": [{"id": i, "name": n, "is_channel": True}
                                                   for i, n in self._names.items()]}  # fmt: skip
            elif method == "conversations.history":
                answer = self._history(payload)
            elif method == "conversations.replies":
                answer = self._replies(payload)
            else:
                answer = {"ok": False, "error": "unknown_method"}
            return 200, {"Content-Type": "application/json; charset=utf-8"}, _json(answer)

    def _failed(self, failure: _Failure, webhook: bool) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if failure.retry_after is not None:
            headers["Retry-After"] = f"{failure.retry_after:g}"
        if webhook:
            headers["Content-Type"] = "text/html"
            return failure.status, headers, (failure.error or "rollup_error").encode()
        if failure.status >= 500 and failure.error is None:
            headers["Content-Type"] = "text/html"
            return failure.status, headers, b"<html><body>Internal Server Error</body></html>"
        error = failure.error or ("ratelimited" if failure.status == 429 else "request_failed")
        return failure.status, headers, _json({"ok": False, "error": error})

    def _new_ts(self) -> str:
        micros, self._next_ts = self._next_ts, self._next_ts + 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        text, blocks = payload.get("text"), payload.get("blocks")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if block_kit_problems(text, blocks):
            return {"ok": False, "error": "invalid_blocks"}
        given = str(payload.get("channel", ""))
        channel = channel_id(given)
        if channel != given:
            self._names[channel] = given.lstrip("#")
        thread_ts = payload.get("thread_ts")
        parent = self._messages.get((channel, thread_ts)) if thread_ts else None
        if thread_ts and parent is None:
            return {"ok": False, "error": "thread_not_found"}
        message = Message(channel, self._new_ts(), str(text), blocks, thread_ts)
        message.metadata = _metadata(payload)
        self._messages[(channel, message.ts)] = message
        if parent is not None:
            parent.replies.append(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": {"text": text}}

    def _update(self, payload: dict[str, Any]) -> dict[str, Any]:
        channel = str(payload.get("channel", ""))
        if channel_id(channel) != channel:
            return {"ok": False, "error": "channel_not_found"}
        message = self._messages.get((channel, str(payload.get("ts"))))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        text, blocks = payload.get("text"), payload.get("blocks")
        if block_kit_problems(text, blocks):
            return {"ok": False, "error": "invalid_blocks"}
        message.text, message.blocks = str(text), blocks
        if "metadata" in payload:
            message.metadata = _metadata(payload)
        message.edits += 1
        return {"ok": True, "channel": channel, "ts": message.ts, "text": text}

    def _history(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The channel's top-level messages since ``oldest``, newest first (one page)."""
        channel = str(payload.get("channel", ""))
        if channel_id(channel) != channel:  # Slack wants the id here, not #name
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(payload.get("oldest") or 0)
        limit = int(payload.get("limit") or 100)
        found = sorted(
            (m for (c, _), m in self._messages.items()
             if c == channel and m.thread_ts is None and float(m.ts) >= oldest),
            key=lambda m: float(m.ts), reverse=True,
        )  # fmt: skip
        with_metadata = _truthy(payload.get("include_all_metadata"))
        return {
            "ok": True,
            "messages": [m.listed(with_metadata) for m in found[:limit]],
            "has_more": len(found) > limit,
        }

    def _replies(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent, then its replies, oldest first (one page)."""
        channel, ts = str(payload.get("channel", "")), str(payload.get("ts", ""))
        parent = self._messages.get((channel, ts))
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        with_metadata = _truthy(payload.get("include_all_metadata"))
        thread = [parent, *parent.replies]
        return {"ok": True, "messages": [m.listed(with_metadata) for m in thread],
                "has_more": False}  # fmt: skip

    def _webhook(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "text/html"}
        if block_kit_problems(payload.get("text"), payload.get("blocks")):
            return 400, headers, b"invalid_blocks"
        message = Message("webhook", self._new_ts(), payload["text"], payload.get("blocks"))
        self._messages[("webhook", message.ts)] = message
        return 200, headers, b"ok"


def _metadata(payload: dict[str, Any]) -> dict[str, Any] | None:
    metadata = payload.get("metadata")
    if isinstance(metadata, str):  # form-encoded: a JSON string
        metadata = json.loads(metadata)
    return metadata if isinstance(metadata, dict) else None


def _truthy(value: Any) -> bool:
    return str(value).lower() in {"1", "true"}


def _json(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer).encode()


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """A JSON body, or a form-encoded one whose ``blocks``/``attachments`` are JSON strings."""
    if content_type.startswith("application/json"):
        parsed = json.loads(body or b"{}")
        return parsed if isinstance(parsed, dict) else {}
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    payload: dict[str, Any] = dict(form)
    for key in ("blocks", "attachments"):
        if key in form:
            payload[key] = json.loads(form[key])
    return payload


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        """The read methods (slack-sdk sends ``conversations.*`` as GET, arguments in the
        query string)."""
        query = self.path.partition("?")[2]
        self._answer({k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        content_type = self.headers.get("Content-Type", "")
        self._answer(parse_body(self.rfile.read(length), content_type))

    def _answer(self, payload: dict[str, Any]) -> None:
        fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]
        content_type = self.headers.get("Content-Type", "")
        if self.path.startswith("/api/"):
            method = self.path.removeprefix("/api/").split("?")[0]
        elif self.path.startswith("/webhook/"):
            method = "webhook"
        else:
            self.send_error(404)
            return
        auth = self.headers.get("Authorization")
        status, headers, body = fake.handle(method, payload, auth, content_type)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``FakeSlack.requests`` instead."""


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A started fake Slack, stopped after the test."""
    with FakeSlack() as server:
        yield server
