"""Slack receivers: one message per alert group, updated in place, with a thread of changes.

The messages are rendered by :mod:`driftnet.alerts.notify.blocks`; this module sends them with
slack-sdk's async clients (a bot token, or an incoming webhook).

The notifiers never retry: a failure raises :class:`~driftnet.alerts.notify.base.DeliveryError`
saying whether a retry can help (and after how long), and the alert stage's outbox decides.
slack-sdk's own retry handlers are off.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from dataclasses import dataclass
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

log = logging.getLogger("driftnet.alerts")

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


METADATA_EVENT = "driftnet_notification"
"""The ``event_type`` of the metadata every message and update carries (the notification's
id in ``event_payload.notification_id``)."""
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{8,}")
"""What a Slack conversation id looks like (a channel given as ``#name`` is not one)."""
LOOK_UP_PAGES = 5
"""Pages of 200 messages read at most when looking for an unsure notification (the newest
first: it was sent, if at all, just before its worker died or its attempt timed out)."""


@dataclass(frozen=True, slots=True)
class Seen:
    """What Slack already has of a notification that may have been delivered."""

    message: SlackThread | None = None
    """Its message (a new one), found in the channel's history."""
    updated: bool = False
    """The group's message already shows it (its metadata names it)."""
    replied: bool = False
    """Its thread reply is there."""


def _notification_id(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT:
        return None
    payload = metadata.get("event_payload")
    found = payload.get("notification_id") if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None


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
        self._warned_unreadable = False
        self._channel: str | None = None
        """The channel's id, once known (see :meth:`_channel_id`)."""

    async def deliver(
        self,
        notification: Notification,
        thread: Thread | SlackThread | None,
        *,
        unsure: bool = False,
    ) -> Thread | None:
        """Send one notification; returns the thread to keep for the group's next one (a
        :class:`SlackThread` as JSON; ``thread`` is one, as JSON or not).

        ``new`` (or no thread yet): a new message. ``update``: the message updated in place
        plus a thread reply; ``repeat``: a thread reply only; ``resolved``: the message turned
        to the resolved look plus a thread reply. When the message is gone (deleted, not
        editable), the group continues in a new message, whose thread is returned.

        Every message and update carries the notification's id in its metadata; ``unsure``
        (it may have been delivered already), the channel's history or the message's thread
        is read first and only what is missing is sent (:meth:`_seen`).
        """
        self._client.session = self._session.get()
        text, blocks = render_blocks(notification)
        metadata = {
            "event_type": METADATA_EVENT,
            "event_payload": {"notification_id": notification.notification_id},
        }
        where = None if thread is None else SlackThread.model_validate(thread)
        seen = await self._seen(notification, where) if unsure else Seen()
        if seen.message is not None:
            return seen.message.model_dump()  # posted before, the poster gone before recording it
        if where is None or notification.kind == "new":
            return await self._post(text, blocks, metadata)
        if seen.replied:
            return where.model_dump()
        if notification.kind != "repeat" and not seen.updated:
            try:
                await self._call("chat.update", channel=where.channel, ts=where.ts, text=text,
                                 blocks=blocks, metadata=metadata)  # fmt: skip
            except DeliveryError as exc:
                if exc.error not in UPDATE_FALLBACK_ERRORS:
                    raise
                return await self._post(text, blocks, metadata)
        await self._call(
            "chat.postMessage",
            channel=where.channel,
            thread_ts=where.ts,
            text=thread_text(notification),
            unfurl_links=False,
            metadata=metadata,
        )
        return where.model_dump()

    async def _post(self, text: str, blocks: list[Block], metadata: dict[str, Any]) -> Thread:
        answer = await self._call(
            "chat.postMessage",
            channel=self.channel,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            metadata=metadata,
        )
        self._channel = str(answer["channel"])  # the id, for a later look-up
        return SlackThread(channel=self._channel, ts=str(answer["ts"])).model_dump()

    async def _seen(self, notification: Notification, where: SlackThread | None) -> Seen:
        """What of ``notification`` Slack already has: a new message is looked for among the
        channel's newest messages, an update and its reply in the
        group's thread (by the id in their metadata). When Slack cannot be read (no
        ``channels:history`` or ``channels:read`` scope...), one warning, and nothing
        is taken as seen: the notification is sent, perhaps twice."""
        wanted = notification.notification_id
        try:
            if where is None or notification.kind == "new":
                channel = await self._channel_id()  # its newest messages: the one sent last
                for message in await self._read("conversations_history", channel=channel):
                    if _notification_id(message) == wanted:
                        return Seen(message=SlackThread(channel=channel, ts=message["ts"]))
                return Seen()
            messages = await self._read("conversations_replies", channel=where.channel,
                                        ts=where.ts)  # fmt: skip
        except DeliveryError as exc:
            if not self._warned_unreadable:
                log.warning("slack: cannot tell whether a notification was delivered before "
                            "(%s); sending it, it may show twice. Give the bot the "
                            "channels:history and channels:read scopes", exc)  # fmt: skip
                self._warned_unreadable = True
            return Seen()
        parent = [m for m in messages if m.get("ts") == where.ts]
        replies = [m for m in messages if m.get("ts") != where.ts]
        return Seen(
            updated=bool(parent) and _notification_id(parent[0]) == wanted,
            replied=any(_notification_id(m) == wanted for m in replies),
        )

    async def _channel_id(self) -> str:
        """The configured channel's id: the channel itself when it is one, else the id its
        last message was posted to, else looked up by name (``conversations.list``, the
        ``channels:read`` scope)."""
        if self._channel is None and CHANNEL_ID.fullmatch(self.channel):
            self._channel = self.channel
        if self._channel is None:
            name = self.channel.lstrip("#")
            listed = await self._read("conversations_list", "channels",
                                      types="public_channel,private_channel")  # fmt: skip
            found = [c.get("id") for c in listed if c.get("name") == name]
            if not found or not isinstance(found[0], str):
                raise DeliveryError(f"no channel named {self.channel!r} in conversations.list",
                                    retryable=False, error="channel_not_found")  # fmt: skip
            self._channel = found[0]
        return self._channel

    async def _read(
        self, method: str, field: str = "messages", **params: Any
    ) -> list[dict[str, Any]]:
        """Every item a paginated read returns (at most :data:`LOOK_UP_PAGES` pages)."""
        read = getattr(self._client, method)
        extra = {"limit": 200} if field == "channels" else {"include_all_metadata": True,
                                                            "limit": 200}  # fmt: skip
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(LOOK_UP_PAGES):
            try:
                response = await read(**params, **extra, cursor=cursor)
            except _SEND_ERRORS as exc:
                raise delivery_error(method.replace("_", "."), exc) from exc
            data = response.data if isinstance(response.data, dict) else {}
            items += [m for m in data.get(field, ()) if isinstance(m, dict)]
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return items

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

    async def deliver(
        self, notification: Notification, thread: Thread | None = None, *, unsure: bool = False
    ) -> None:
        """Post the notification as a new message; a webhook has no thread to return,
        and cannot look back: an ``unsure`` notification is posted again."""
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
