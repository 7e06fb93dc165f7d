"""The health and metrics endpoint of ``driftnet worker`` and ``driftnet sink``: an aiohttp
server in the app's own event loop serving ``/health`` and ``/metrics``.

The socket is bound before the app starts (:func:`listen`), so a busy port is a one-line error
at start rather than a traceback from inside a running worker, and port 0 picks a free port
whose number is known (and logged) before anything is served.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from driftnet.streams.ops.health import Health
from driftnet.streams.settings import HttpSettings

log = logging.getLogger("driftnet.http")

BACKLOG = 64


class HttpError(Exception):
    """The endpoint cannot listen; ``str()`` is one line saying why and what to set."""


def listen(settings: HttpSettings) -> socket.socket:
    """A listening, non-blocking socket on ``settings.host``:``settings.port``."""
    where = f"port {settings.port} on {settings.host}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise HttpError(
            f"cannot listen on {settings.host!r}: {exc}: set http.host to an address of this "
            "machine (DRIFTNET_HTTP__HOST)"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted worker take its port back at once (connections of the last run may
        # linger in TIME_WAIT); it never allows two listeners on one port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise HttpError(
                f"{where} is already in use: set http.port (DRIFTNET_HTTP__PORT) to a free "
                "port, or 0 to pick one, or http.enabled = false"
            ) from None
        raise HttpError(
            f"cannot listen on {where}: {exc.strerror}: set http.host / http.port "
            "(DRIFTNET_HTTP__HOST, DRIFTNET_HTTP__PORT)"
        ) from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a listening socket (its real port when 0 was asked)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class HttpServer:
    """Serves ``/health`` (JSON, 200 or 503) and ``/metrics`` (Prometheus exposition) on a
    socket from :func:`listen`; ``health`` and ``metrics`` are asked at every request."""

    def __init__(
        self,
        sock: socket.socket,
        health: Callable[[], Awaitable[Health]],
        metrics: Callable[[str], Awaitable[tuple[bytes, str]]],
    ) -> None:
        self.sock = sock
        self.url = url_of(sock)
        self._health = health
        self._metrics = metrics
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._on_health)
        app.router.add_get("/metrics", self._on_metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, self.sock).start()
        self._runner = runner
        log.info("health and metrics at %s/health and %s/metrics", self.url, self.url)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.sock.close()

    async def _on_health(self, request: web.Request) -> web.Response:
        health = await self._health()
        return web.json_response(health.model_dump(mode="json"), status=health.http_status)

    async def _on_metrics(self, request: web.Request) -> web.Response:
        body, content_type = await self._metrics(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})
