"""One place that turns :class:`KafkaSettings` into client options for kafka-python, aiokafka
and faust.

kafka-python and aiokafka (admin, producers, the harvest sink's consumer) and faust spell the same connection
settings differently; every client driftnet makes gets them from here. The commands' clients
(admin, the whole-topic reader) first :func:`probe` the address with Kafka's ApiVersions
handshake, so that "no broker" -- or something else listening there -- takes at most
:data:`PROBE_TIMEOUT_S` to say.
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

from driftnet.streams.settings import KafkaSettings, PublisherSettings


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL, None for plaintext."""
    if not kafka.security_protocol.endswith("SSL"):
        return None
    cafile = str(kafka.ssl_cafile) if kafka.ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def kafka_python_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's ``KafkaAdminClient`` and ``KafkaProducer``, and for
    aiokafka's consumer and producer (which spell these options the same way)."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    context = ssl_context(kafka)
    if context is not None:
        options["ssl_context"] = context
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        if kafka.sasl_password is not None:
            options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options


def faust_broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` for a ``faust.App``."""
    import faust

    options: dict[str, Any] = {"broker": [f"kafka://{server}" for server in kafka.servers]}
    context = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username or "",
            password=password,
            mechanism=kafka.sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options


class KafkaUnreachable(Exception):
    """No broker answered; ``str()`` is one line naming the address, ``why`` the cause.
    ``no_broker``: nothing answered at all (worth asking "is a broker running?"), as opposed
    to an address without a port or a server that does not speak Kafka."""

    def __init__(self, message: str, why: str = "", *, no_broker: bool = True) -> None:
        super().__init__(message)
        self.why = why
        self.no_broker = no_broker


PROBE_TIMEOUT_S = 3.0
"""How long :func:`probe` waits for a bootstrap server to answer."""

_CORRELATION = 0x44726E74
_API_VERSIONS = struct.pack(">hhih", 18, 0, _CORRELATION, 14) + b"driftnet-probe"
"""An ApiVersions v0 request (key 18), which every Kafka broker answers before anything
else, SASL or not; no byte of it is a line end, so a line-based server just waits."""


class _NotKafka(Exception):
    """Something accepted the connection but gave no Kafka answer."""


def probe(kafka: KafkaSettings, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Return once a bootstrap server answers Kafka's ApiVersions handshake (or, over TLS,
    accepts a connection); :class:`KafkaUnreachable` within ``timeout_s`` when none does:
    refused, unknown host, no answer, no port, or something listening that does not speak
    Kafka (an HTTP server).

    The commands call it before they build a Kafka client: kafka-python retries a refused
    bootstrap until its own timeout (5-30 s), and waits 10 s on a server that accepts the
    connection and never answers, so without it "no broker" took that long to say. A server
    that answers gets the client's full timeouts. The worker's clients (faust, the
    publisher's thread) never call it."""
    servers = kafka.servers
    unported = [server for server in servers if not _port(server)]
    if unported:
        host = unported[0].strip()
        why = f"{host!r} has no port"
        raise KafkaUnreachable(
            f"kafka.bootstrap_servers {why}: write host:port, e.g. {host}:9092", why,
            no_broker=False,
        )  # fmt: skip
    share = timeout_s / max(len(servers), 1)
    handshake = not kafka.security_protocol.endswith("SSL")
    problems: list[str] = []
    strangers: list[str] = []
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=share) as sock:
                if handshake:
                    _api_versions(sock)
                return
        except _NotKafka as exc:
            strangers.append(f"{server}{exc}")
        except TimeoutError:
            problems.append(f"{server}: no answer in {share:g} s")
        except socket.gaierror:
            problems.append(f"{server}: unknown host")
        except OSError as exc:
            problems.append(f"{server}: {(exc.strerror or type(exc).__name__).lower()}")
    if strangers and not problems:
        why = "something is listening there, but it does not speak Kafka"
        raise KafkaUnreachable(
            f"no Kafka answered at {', '.join(strangers)} ({why})", why, no_broker=False
        )
    problems += [f"{stranger}: not Kafka" for stranger in strangers]
    why = "; ".join(problems) if len(problems) != 1 else problems[0].split(": ", 1)[-1]
    why = why or "no bootstrap servers"
    raise KafkaUnreachable(
        f"cannot reach Kafka at {kafka.bootstrap_servers} ({why}); "
        "is a broker running? (`driftnet broker` starts one)",
        why,
    )


def _port(server: str) -> bool:
    _, colon, port = server.rpartition(":")
    return bool(colon) and port.isdigit()


def _api_versions(sock: socket.socket) -> None:
    """Send ApiVersions and read the answer's size and correlation id (within the socket's
    timeout); :class:`_NotKafka` saying how long it waited when no Kafka answer comes."""
    waited = sock.gettimeout() or 0.0
    try:
        sock.sendall(struct.pack(">i", len(_API_VERSIONS)) + _API_VERSIONS)
        head = b""
        while len(head) < 8:
            chunk = sock.recv(8 - len(head))
            if not chunk:
                raise _NotKafka("")
            head += chunk
    except TimeoutError:
        raise _NotKafka(f" within {waited:g} s") from None
    except ConnectionError:
        raise _NotKafka("") from None
    size, correlation = struct.unpack(">ii", head)
    if correlation != _CORRELATION or not 4 <= size < 1 << 20:
        raise _NotKafka("")


def admin_client(kafka: KafkaSettings, *, timeout_s: float = 10.0) -> Any:
    """A kafka-python ``KafkaAdminClient``, or :class:`KafkaUnreachable` within ``timeout_s``
    (within :data:`PROBE_TIMEOUT_S` when nothing listens at the address)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    probe(kafka, timeout_s=min(timeout_s, PROBE_TIMEOUT_S))
    timeout_ms = int(timeout_s * 1000)
    try:
        return KafkaAdminClient(
            **kafka_python_options(kafka),
            request_timeout_ms=max(timeout_ms, 1000),
            bootstrap_timeout_ms=timeout_ms,
        )
    except KafkaError as exc:
        raise KafkaUnreachable(
            f"cannot reach Kafka at {kafka.bootstrap_servers} ({type(exc).__name__}); "
            "is a broker running? (`driftnet broker` starts one)"
        ) from None


def publisher_producer(
    kafka: KafkaSettings, options: PublisherSettings, connect_timeout_ms: int
) -> Any:
    """The kafka-python ``KafkaProducer`` of :class:`driftnet.streams.clients.publisher.EventPublisher`; raises
    when no broker answers within ``connect_timeout_ms``."""
    from kafka import KafkaProducer

    acks: int | str = "all" if options.acks == "all" else int(options.acks)
    return KafkaProducer(
        **kafka_python_options(kafka),
        acks=acks,
        enable_idempotence=acks == "all",
        compression_type=None if options.compression == "none" else options.compression,
        linger_ms=5,
        batch_size=1024 * 1024,
        max_request_size=options.request_limit,
        delivery_timeout_ms=int(options.delivery_timeout_s * 1000),
        request_timeout_ms=min(30_000, int(options.delivery_timeout_s * 1000)),
        max_block_ms=connect_timeout_ms,
        bootstrap_timeout_ms=connect_timeout_ms,
    )


def whole_topic_consumer(
    kafka: KafkaSettings,
    topic: str,
    *,
    timeout_s: float,
    bootstrap_timeout_ms: int,
    error: type[Exception],
) -> tuple[Any, list[Any]]:
    """A group-less kafka-python consumer assigned every partition of ``topic`` (a group join
    would be pointless for a one-off read, and hangs on some brokers), with the partitions; a
    one-line ``error`` when the broker or the topic is not there. The caller closes it."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        probe(kafka, timeout_s=min(bootstrap_timeout_ms / 1000, PROBE_TIMEOUT_S))
    except KafkaUnreachable as exc:
        raise error(_no_broker(kafka, exc.why) if exc.no_broker else str(exc)) from None
    try:
        consumer = KafkaConsumer(
            **kafka_python_options(kafka),
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=int(timeout_s * 1000) + 1000,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
    except KafkaError as exc:
        raise error(_no_broker(kafka, type(exc).__name__)) from None
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise error(
                f"topic {topic!r} does not exist on {kafka.bootstrap_servers} "
                "(create it with `driftnet topics create`)"
            )
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
    except KafkaError as exc:
        consumer.close()
        raise error(f"reading {topic!r} failed: {type(exc).__name__}: {exc}") from None
    except BaseException:
        consumer.close()
        raise
    return consumer, assigned


def _no_broker(kafka: KafkaSettings, why: str) -> str:
    return (
        f"no Kafka broker at {kafka.bootstrap_servers} ({why}); "
        "is one running? (`driftnet broker` starts one)"
    )
