"""The health and metrics endpoint over real HTTP on 127.0.0.1: its settings, a busy port as a
one-line error, and a worker and a sink on a real broker scraped while they run."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from driftnet.cli.main import cli
from driftnet.harvest.triage import Tally
from driftnet.storage.settings import HarvestSettings
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.ops.http_server import HttpError, HttpServer, listen
from driftnet.streams.ops.metrics import AppMetrics
from driftnet.streams.ops.status import AppStatus
from driftnet.streams.settings import (
    ConfigError,
    HttpSettings,
    KafkaSettings,
    PublisherSettings,
    Settings,
    load_settings,
)
from driftnet.streams.sink.parquet import ParquetSink
from tests.support.factories import make_event
from tests.support.kafka_helpers import WorkerProcess, detection_settings, settings_env

ADDRESS = re.compile(r"health and metrics at (http://127\.0\.0\.1:\d+)/health")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def busy_port() -> socket.socket:
    """A socket listening on a free port of 127.0.0.1 (as another program would)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


# -- settings ------------------------------------------------------------------------------


def test_http_settings_default_to_port_9464_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default the endpoint is on, on 127.0.0.1:9464; DRIFTNET_HTTP__* change it; a port
    out of range is one line naming the key."""
    for name in ("DRIFTNET_HTTP__ENABLED", "DRIFTNET_HTTP__HOST", "DRIFTNET_HTTP__PORT"):
        monkeypatch.delenv(name, raising=False)
    assert load_settings().http == HttpSettings(enabled=True, host="127.0.0.1", port=9464)
    monkeypatch.setenv("DRIFTNET_HTTP__PORT", "0")
    monkeypatch.setenv("DRIFTNET_HTTP__ENABLED", "false")
    assert load_settings().http == HttpSettings(enabled=False, port=0)
    monkeypatch.setenv("DRIFTNET_HTTP__PORT", "70000")
    with pytest.raises(ConfigError, match=r"^invalid setting http\.port: Input should be less"):
        load_settings()


# -- listening ---------------------------------------------------------------------------


def test_port_0_listens_on_a_free_port_of_loopback() -> None:
    """Port 0 gives a listening socket on 127.0.0.1 whose real port is known before serving."""
    sock = listen(HttpSettings(port=0))
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        sock.close()


def test_a_busy_port_is_one_line_saying_what_to_set() -> None:
    """Another program on the port: one line naming it and the setting to change."""
    with busy_port() as busy:
        port = busy.getsockname()[1]
        with pytest.raises(HttpError) as caught:
            listen(HttpSettings(port=port))
    assert str(caught.value) == (
        f"port {port} on 127.0.0.1 is already in use: set http.port (DRIFTNET_HTTP__PORT) to "
        "a free port, or 0 to pick one, or http.enabled = false"
    )


def test_disabled_means_no_socket_at_all(tmp_path: Path) -> None:
    """With ``http.enabled = false`` the worker and the sink bind nothing."""
    from driftnet.streams.ops.http_endpoint import listen_http
    from driftnet.streams.sink.stage import http_server, make_sink

    settings = Settings(
        http=HttpSettings(enabled=False, port=0), harvest=HarvestSettings(location=str(tmp_path))
    )
    assert listen_http(settings) is None
    assert http_server(settings, make_sink(settings)) is None


def test_a_host_that_is_no_address_is_one_line() -> None:
    """A host name that does not resolve is one line naming http.host."""
    with pytest.raises(HttpError, match=r"^cannot listen on 'no-such-host\.invalid': .*http\.host"):
        listen(HttpSettings(host="no-such-host.invalid", port=0))


# -- serving -----------------------------------------------------------------------------


def test_health_and_metrics_over_http(tmp_path: Path) -> None:
    """/health answers 503 with the reasons, then 200 once the parts are fine; /metrics is the
    Prometheus text of the app's counts; any other path is 404."""
    sink = ParquetSink(
        KafkaSettings(), HarvestSettings(location=str(tmp_path)), failures_topic="f", dlq_topic="d"
    )
    tally = Tally(messages=7, events=12)
    status = AppStatus(AppMetrics(process=False), tally=tally, sink=sink)

    async def exercise() -> list[tuple[int, str, str]]:
        server = HttpServer(listen(HttpSettings(port=0)), status.health, status.render_metrics)
        await server.start()
        assert server.url.startswith("http://127.0.0.1:")
        answers = []
        try:
            async with ClientSession() as session:
                for path in ("/health", "/metrics", "/nope"):
                    if path == "/nope":
                        sink.joined = True
                    async with session.get(server.url + path) as response:
                        answers.append(
                            (response.status, response.content_type, await response.text())
                        )
                async with session.get(server.url + "/health") as response:
                    answers.append((response.status, response.content_type, await response.text()))
        finally:
            await server.stop()
        return answers

    health, metrics, missing, healthy = asyncio.run(exercise())
    assert health[:2] == (503, "application/json")
    assert json.loads(health[2]) == {
        "status": "unhealthy",
        "reasons": ["harvest sink not yet assigned: joining its consumer group"],
    }
    assert metrics[:2] == (200, "text/plain")
    got = parse(metrics[2])
    assert got[("driftnet_messages_total", ())] == 7
    assert got[("driftnet_events_total", ())] == 12
    assert got[("driftnet_healthy", ())] == 0
    assert missing[0] == 404
    assert healthy[0] == 200
    assert json.loads(healthy[2]) == {"status": "ok", "reasons": []}


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# -- on a broker -------------------------------------------------------------------------


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape_until(url: str, done: Any, timeout_s: float = 30.0) -> Samples:
    """Scrape ``url``/metrics until ``done(samples)`` holds; the last samples either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = parse(get(url + "/metrics")[1])
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


class ServingProcess(WorkerProcess):
    """``driftnet worker`` / ``sink``, started once its endpoint serves (before it consumes)."""

    READY = "health and metrics at"


def address_of(process: WorkerProcess) -> str:
    found = ADDRESS.search(process.log)
    assert found, process.log
    return found.group(1)


@pytest.mark.integration
def test_a_worker_counts_what_it_handled_and_is_healthy(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Four valid events (one failing two rules), an event missing its release and a
    message that is not JSON: the worker's /metrics counts exactly those, the failure
    reaches a harvest file, windows close and are timed, nothing waits; /health is 503 while
    the worker joins its group, then 200."""
    settings = detection_settings(kafka_bootstrap, tmp_path, "health")
    # two minutes ago: the window is over, so once the stream idles (3 s) it closes
    now = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    events = [make_event(event_id=f"evt-{i}", timestamp=now) for i in range(3)]
    events.append(make_event(event_id="evt-bad", timestamp=now, status="error",
                             error_type="provider_timeout", latency_ms=45_000.0))  # fmt: skip
    missing = {
        k: v for k, v in make_event(event_id="evt-x", timestamp=now).items() if k != "release"
    }
    topic = settings.topics.events.name
    with EventPublisher(settings.kafka, topic, PublisherSettings(batch_max_events=1)) as publisher:
        for event in [*events, missing]:
            assert publisher.publish(event)
        assert publisher.publish_raw(b'{"event_id": "cut-off", "timest')

    with ServingProcess(settings, tmp_path / "worker.log") as worker:
        url = address_of(worker)
        joining = get(url + "/health")
        worker.wait_for(WorkerProcess.READY)
        got = scrape_until(
            url,
            lambda s: (
                s.get(("driftnet_messages_total", ())) == 6
                and s.get(("driftnet_sink_rows_written_total", ())) == 1
                and s.get(("driftnet_windows_closed_total", ()), 0) >= 1
                and s.get(("driftnet_healthy", ())) == 1
            ),
        )
        health = get(url + "/health")
        assert worker.stop() == 0, worker.log

    assert joining[0] == 503, joining
    assert json.loads(joining[1])["reasons"][0] == (
        "events consumer not yet assigned: joining its consumer group"
    )
    assert got[("driftnet_messages_total", ())] == 6, worker.log
    assert got[("driftnet_events_total", ())] == 4
    assert got[("driftnet_failure_records_total", ())] == 1
    assert got[("driftnet_failures_total", (("rule", "status_error"),))] == 1
    assert got[("driftnet_failures_total", (("rule", "latency_slo"),))] == 1
    assert got[("driftnet_failures_total", (("rule", "refusal"),))] == 0
    assert got[("driftnet_dead_letters_total", (("reason", "missing_field"),))] == 1
    assert got[("driftnet_dead_letters_total", (("reason", "invalid_json"),))] == 1
    assert got[("driftnet_consumer_lag_messages", ())] == 0
    assert got[("driftnet_sink_rows_written_total", ())] == 1
    assert got[("driftnet_sink_files_written_total", ())] == 1
    assert got[("driftnet_windows_closed_total", ())] >= 1
    assert got[("driftnet_detector_seconds_count", ())] >= 1
    assert 0 <= got[("driftnet_window_lag_seconds", ())] < 300
    assert got[("driftnet_alerts_sent_total", (("receiver", "console"),))] >= 0
    assert ("process_cpu_seconds_total", ()) in got
    assert (health[0], json.loads(health[1])) == (200, {"status": "ok", "reasons": []})


@pytest.mark.integration
def test_the_sink_alone_serves_its_own_metrics(kafka_bootstrap: str, tmp_path: Path) -> None:
    """``driftnet sink`` counts the records it harvested on its own endpoint, with no worker
    metric, and is healthy once it has joined its group."""
    from tests.integration.test_sink import make_records, produce_records

    settings = detection_settings(kafka_bootstrap, tmp_path, "sink-health")
    produce_records(kafka_bootstrap, settings.topics.failures.name, make_records(30))
    with ServingProcess(settings, tmp_path / "sink.log", command="sink") as sink:
        url = address_of(sink)
        got = scrape_until(url, lambda s: s.get(("driftnet_sink_rows_written_total", ())) == 30)
        health = get(url + "/health")
        assert sink.stop() == 0, sink.log
    assert got[("driftnet_sink_records_total", ())] == 30, sink.log
    assert got[("driftnet_sink_rows_written_total", ())] == 30
    assert got[("driftnet_sink_files_written_total", ())] >= 1
    assert ("driftnet_messages_total", ()) not in got
    assert (health[0], json.loads(health[1])) == (200, {"status": "ok", "reasons": []})


@pytest.mark.integration
@pytest.mark.parametrize("command", ["worker", "sink"])
def test_a_busy_port_stops_the_start_in_one_line(
    command: str, kafka_bootstrap: str, tmp_path: Path, runner: CliRunner
) -> None:
    """``driftnet worker`` / ``sink`` on a port another program holds: exit 1 with the one
    line that says which port and what to set, no traceback."""
    settings = detection_settings(kafka_bootstrap, tmp_path, "busy")
    with busy_port() as busy:
        port = busy.getsockname()[1]
        env = settings_env(settings) | {"DRIFTNET_HTTP__PORT": str(port)}
        result = runner.invoke(cli, [command], env=env)
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: port {port} on 127.0.0.1 is already in use: set http.port "
        "(DRIFTNET_HTTP__PORT) to a free port, or 0 to pick one, or http.enabled = false\n"
    )
