"""Slack receivers: one message per alert group, updated in place, with a thread of changes.

The messages are rendered by :mod:`driftnet.alerts.notify.blocks`; this module sends them with
slack-sdk's async clients (a bot token, or an incoming webhook).

The notifiers never retry: a failure raises :class:`~driftnet.alerts.notify.base.DeliveryError`
saying whether a retry can help (and after how long), and the alert stage's outbox decides.
slack-sdk's own retry handlers are off.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from driftnet.alerts.model import Notification
from driftnet.alerts.notify.base import DeliveryError, Notifier, Thread
from driftnet.alerts.notify.blocks import Block, render_blocks, thread_text

UPDATE_FALLBACK_ERRORS = frozenset(
    {"message_not_found", "cant_update_message", "edit_window_closed"}
)
"""chat.update errors after which the group moves to a fresh message instead of failing."""
TRANSIENT_API_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
"""``ok: false`` errors Slack documents as transient: worth a retry like a 5xx."""


# ----------------------------------------------------------------------------- errors


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), never negative."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def http_error(
    what: str, status: int, error: str | None, headers: Any | None = None
) -> DeliveryError:
    """429 and 5xx are retryable (after Retry-After, when given); other statuses are not,
    nor ``ok: false`` answers, except the transient API errors."""
    retryable = status == 429 or status >= 500 or error in TRANSIENT_API_ERRORS
    wait = retry_after(headers.get("Retry-After")) if retryable and headers is not None else None
    return DeliveryError(
        f"{what} failed: HTTP {status} {error or ''}".rstrip(),
        retryable=retryable,
        retry_after_s=wait,
        status=status,
        error=error,
    )


def delivery_error(what: str, exc: Exception) -> DeliveryError:
    """Classify what slack-sdk or aiohttp raised (see :func:`http_error`); network failures
    and timeouts are retryable, a malformed request is not."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        # a SlackResponse, or aiohttp's response when the body was not JSON
        status = getattr(response, "status_code", None) or getattr(response, "status", 0)
        data = getattr(response, "data", None)
        error = data.get("error") if isinstance(data, dict) else None
        return http_error(what, int(status or 0), error, getattr(response, "headers", None))
    retryable = isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError)
    name = type(exc).__name__
    detail = f"{name}: {exc}" if str(exc) else name
    return DeliveryError(f"{what} failed: {detail}", retryable=retryable, error=name)


_SEND_ERRORS = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


# ----------------------------------------------------------------------------- notifiers


class SlackThread(BaseModel):
    """Where a group's message lives: the channel *id* Slack answered with, and its ts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: str
    ts: str


class _Session:
    """One aiohttp session per notifier, opened on first use inside the running loop (a
    notifier belongs to one event loop), closed by ``close``."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


class SlackNotifier(Notifier):
    """Posts with a bot token: a group's first notification is a message, later ones update
    it in place and reply in its thread. Every method raises only
    :class:`~driftnet.alerts.notify.base.DeliveryError`."""

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 10,
    ) -> None:
        self.channel = channel
        self.timeout_s = timeout_s
        self._session = _Session(timeout_s)
        self._client = AsyncWebClient(
            token=token,
            base_url=base_url or AsyncWebClient.BASE_URL,
            timeout=math.ceil(timeout_s),
            retry_handlers=[],  # the default retries a connection error once: the caller retries
        )

    async def deliver(
        self, notification: Notification, thread: Thread | SlackThread | None
    ) -> Thread | None:
        """Send one notification; returns the thread to keep for the group's next one (a
        :class:`SlackThread` as JSON; ``thread`` is one, as JSON or not).

        ``new`` (or no thread yet): a new message. ``update``: the message updated in place
        plus a thread reply; ``repeat``: a thread reply only; ``resolved``: the message turned
        to the resolved look plus a thread reply. When the message is gone (deleted, not
        editable), the group continues in a new message, whose thread is returned.
        """
        self._client.session = self._session.get()
        text, blocks = render_blocks(notification)
        where = None if thread is None else SlackThread.model_validate(thread)
        if where is None or notification.kind == "new":
            return await self._post(text, blocks)
        if notification.kind != "repeat":
            try:
                await self._call(
                    "chat.update", channel=where.channel, ts=where.ts, text=text, blocks=blocks
                )
            except DeliveryError as exc:
                if exc.error not in UPDATE_FALLBACK_ERRORS:
                    raise
                return await self._post(text, blocks)
        await self._call(
            "chat.postMessage",
            channel=where.channel,
            thread_ts=where.ts,
            text=thread_text(notification),
            unfurl_links=False,
        )
        return where.model_dump()

    async def _post(self, text: str, blocks: list[Block]) -> Thread:
        answer = await self._call(
            "chat.postMessage", channel=self.channel, text=text, blocks=blocks, unfurl_links=False
        )
        return SlackThread(channel=str(answer["channel"]), ts=str(answer["ts"])).model_dump()

    async def _call(self, method: str, **payload: Any) -> dict[str, Any]:
        try:
            response = await self._client.api_call(method, json=payload)
        except _SEND_ERRORS as exc:
            raise delivery_error(method, exc) from exc
        data = response.data
        return data if isinstance(data, dict) else {}

    async def close(self) -> None:
        """Close the HTTP session; a later ``deliver`` opens a new one."""
        self._client.session = None
        await self._session.close()


class SlackWebhookNotifier(Notifier):
    """Posts to an incoming webhook, which cannot edit messages: every notification is a new
    message (a resolved one in the resolved look). Raises only
    :class:`~driftnet.alerts.notify.base.DeliveryError`."""

    def __init__(self, url: str, *, timeout_s: float = 10) -> None:
        self.timeout_s = timeout_s
        self._session = _Session(timeout_s)
        self._client = AsyncWebhookClient(url, timeout=math.ceil(timeout_s), retry_handlers=[])

    async def deliver(self, notification: Notification, thread: Thread | None = None) -> None:
        """Post the notification as a new message; a webhook has no thread to return."""
        self._client.session = self._session.get()
        text, blocks = render_blocks(notification)
        try:
            response = await self._client.send(text=text, blocks=blocks, unfurl_links=False)
        except _SEND_ERRORS as exc:
            raise delivery_error("webhook", exc) from exc
        if response.status_code != 200:
            error = response.body.strip()[:100] or None
            raise http_error("webhook", response.status_code, error, response.headers)

    async def close(self) -> None:
        """Close the HTTP session; a later ``deliver`` opens a new one."""
        self._client.session = None
        await self._session.close()
