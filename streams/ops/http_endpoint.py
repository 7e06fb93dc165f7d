"""The worker's health and metrics endpoint: its port bound at start-up, run as a mode service."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from driftnet.streams.ops.http_server import HttpError, listen
from driftnet.streams.ops.preflight import WorkerError
from driftnet.streams.settings import Settings

if TYPE_CHECKING:
    from driftnet.streams.ops.http_server import HttpServer


def listen_http(settings: Settings) -> socket.socket | None:
    """The health and metrics endpoint's socket (None when ``http.enabled`` is off), bound
    now so that a busy port is a one-line error before anything starts."""
    if not settings.http.enabled:
        return None

    try:
        return listen(settings.http)
    except HttpError as exc:
        raise WorkerError(str(exc)) from None


def http_service(server: HttpServer) -> Any:
    """A mode service running ``server`` in the worker's event loop. Given to the faust
    worker, it starts before the app (``/health`` says 503 while the consumer joins its group)
    and stops after it."""
    import mode

    class HttpEndpoint(mode.Service):
        """The health and metrics endpoint."""

        async def on_start(self) -> None:
            await server.start()

        async def on_stop(self) -> None:
            await server.stop()

    return HttpEndpoint()
