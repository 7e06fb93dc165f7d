"""``driftnet demo``: the whole loop on one machine in about a minute and a half.

An embedded broker, the topics, a ``driftnet worker`` process (detectors, canary judge,
alerts, harvest sink) and the simulator's ``demo`` story played into it at 30x. Alerts are
printed as they reach the alerts topic (and go to Slack when a token is configured); at the
end, the canary verdicts, a DuckDB summary of the harvest and the commands to dig further.

Everything it starts, it stops: on success, on an error and on Ctrl-C (the worker first, so
its harvest sink closes its files, then the broker). Both children also get SIGTERM from Linux
should this process die without a word.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

from kafka import KafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from driftnet.alerts.model import Notification
from driftnet.alerts.notify.console import render_console
from driftnet.alerts.sources import WATCHDOG
from driftnet.sandbox import demo_plan
from driftnet.sandbox.broker import BrokerError, EmbeddedBroker, die_with_parent, terminate
from driftnet.sandbox.demo_tables import query_table, verdicts_table
from driftnet.sandbox.simulation import Simulator, start_of
from driftnet.storage.query import Harvest, QueryError
from driftnet.streams.clients.kafka_config import kafka_python_options
from driftnet.streams.clients.publisher import EventPublisher
from driftnet.streams.clients.topics import TopicsError, create_topics
from driftnet.streams.clients.verdicts import VerdictsError, read_latest
from driftnet.streams.settings import KafkaSettings, Settings, load_settings

WORKER_READY_S = 60.0
WORKER_STOP_S = 30.0
SETTLE_TIMEOUT_S = 20.0
"""How long, after the last event, the demo waits for the last windows' verdicts."""


class DemoError(Exception):
    """The demo cannot go on; ``str()`` says why in one line."""


def driftnet_command() -> str:
    """How to call this ``driftnet`` in a printed command: relative to here when it can be."""
    script = Path(sys.executable).parent / "driftnet"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script) if script.exists() else "driftnet"


def prepare(directory: Path) -> None:
    """An empty demo folder: a new one, or one an earlier demo made (cleared)."""
    if directory.exists():
        if not (directory / demo_plan.MARKER).exists() and any(directory.iterdir()):
            raise DemoError(f"{directory} exists and is not a demo folder; pick another with --dir")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / demo_plan.MARKER).write_text("made by `driftnet demo`; it clears it on rerun\n")


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment without DRIFTNET_* settings (the demo's file says what the worker does),
    except how to reach Slack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTNET_")}
    alerts = settings.alerts
    if alerts.slack_token is not None:
        env["DRIFTNET_ALERTS__SLACK_TOKEN"] = alerts.slack_token.get_secret_value()
        env["DRIFTNET_ALERTS__SLACK_CHANNEL"] = alerts.slack_channel
        if alerts.slack_base_url:
            env["DRIFTNET_ALERTS__SLACK_BASE_URL"] = alerts.slack_base_url
    return env


@dataclass
class AlertPrinter:
    """Prints every notification that reaches the alerts topic (the watchdog aside), from a
    thread, group-less (kafka-python's group join hangs on the embedded broker)."""

    kafka: KafkaSettings
    topic: str
    console: Console
    printed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:

        try:
            consumer = KafkaConsumer(
                **kafka_python_options(self.kafka), group_id=None, enable_auto_commit=False
            )
        except Exception as exc:
            self.error = f"cannot read {self.topic}: {exc}"
            return
        try:
            partition = TopicPartition(self.topic, 0)
            consumer.assign([partition])
            consumer.seek_to_beginning(partition)
            while not self._stop.is_set():
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        try:
                            notification = Notification.model_validate_json(record.value)
                        except ValueError:
                            continue
                        if all(a.rule == WATCHDOG for a in notification.alerts):
                            continue
                        self.printed += 1
                        self.kinds[notification.kind] = self.kinds.get(notification.kind, 0) + 1
                        self.console.print()
                        self.console.print(
                            render_console(notification), highlight=False, soft_wrap=True
                        )
        except Exception as exc:  # the demo goes on without live alerts; say so at the end
            self.error = f"reading {self.topic} stopped: {type(exc).__name__}: {exc}"
        finally:
            consumer.close()


class WorkerProcess:
    """``driftnet --config FILE worker`` in its own process group, its output in a log file."""

    def __init__(self, config: Path, log_path: Path, env: dict[str, str]) -> None:
        self.config = config
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:

        script = Path(sys.executable).parent / "driftnet"
        command = [str(script), "--config", str(self.config), "worker"]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + WORKER_READY_S
        while "consuming" not in self.log_text():
            if self.process.poll() is not None:
                raise DemoError(
                    f"the worker exited with code {self.process.returncode} while starting: "
                    f"{self.last_line()} (log: {self.log_path})"
                )
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the worker was not ready in {WORKER_READY_S:.0f} s (log: {self.log_path})"
                )
            time.sleep(0.2)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def last_line(self) -> str:
        lines = [line for line in self.log_text().splitlines() if line.strip()]
        return lines[-1].strip() if lines else "no output"

    def stop(self) -> int | None:
        """SIGTERM (the worker stops cleanly, its sink closes its files), then SIGKILL."""

        process, self.process = self.process, None
        code = None if process is None else terminate(process, WORKER_STOP_S)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, directory: Path, *, seed: int = 0) -> None:
    """The demo, start to finish (see the module docstring)."""

    console = Console(highlight=False)  # the terminal's width (COLUMNS, else 80 when piped)
    say = partial(console.print, soft_wrap=True)  # one line each, for the terminal to wrap
    started = time.monotonic()
    directory = directory.resolve()
    prepare(directory)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C stops the demo even when started with SIGINT ignored (a background job)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    broker = EmbeddedBroker(log=directory / "broker.log")
    worker: WorkerProcess | None = None
    printer: AlertPrinter | None = None
    slack = settings.alerts.slack_token is not None
    try:
        try:
            broker.start()
        except BrokerError as exc:
            raise DemoError(str(exc)) from None
        say(f"[bold]driftnet demo[/] · embedded broker on {broker.bootstrap_servers}")
        config = directory / "driftnet.toml"
        channel = settings.alerts.slack_channel if slack else None
        config.write_text(
            demo_plan.worker_config(
                broker.bootstrap_servers,
                directory,
                slack_channel=channel,
                query_command=f"{driftnet_command()} --config {_shown(config)} query",
            )
        )

        demo = load_settings(config)
        try:
            create_topics(demo.kafka, demo.topics.by_role())
        except TopicsError as exc:
            raise DemoError(str(exc)) from None
        worker = WorkerProcess(config, directory / "worker.log", worker_env(settings))
        worker.start()
        where = f"console and Slack ({settings.alerts.slack_channel})" if slack else "console"
        say(f"worker running (log: {_shown(directory / 'worker.log')}); alerts to the {where}")
        printer = AlertPrinter(demo.kafka, demo.topics.alerts.name, console)
        printer.start()
        end = _play(demo, console, seed)
        _settle(demo, end)
        time.sleep(demo_plan.GROUP_INTERVAL_S + 1)  # the last updates and resolves
        printer.stop()
        verdicts = _latest_verdicts(demo)
        code = worker.stop()
        if code not in (0, None):
            raise DemoError(f"the worker exited with code {code} (log: {directory / 'worker.log'})")
        console.print()
        _print_verdicts(console, verdicts)
        _print_summary(console, demo, directory)
        if printer.error:
            console.print(f"[yellow]note:[/] {printer.error}")
        say(
            f"\n[bold]done in {time.monotonic() - started:.0f} s[/]: {printer.printed} alert "
            f"notifications, {len(verdicts)} canary verdicts; the broker (in memory) is gone, "
            f"the harvest stays in {_shown(directory / 'harvest')}"
        )
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted[/]: stopping the worker and the broker")
        raise
    finally:
        if printer is not None:
            printer.stop()
        if worker is not None:
            worker.stop()
        broker.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _play(settings: Settings, console: Console, seed: int) -> float:
    """Publish the story paced at the demo's rate; returns its last event time (epoch s)."""

    span, count, rate = demo_plan.DURATION_S, demo_plan.EVENTS, demo_plan.RATE
    wall = span / demo_plan.SPEEDUP
    first = start_of() - timedelta(seconds=span - wall)
    simulator = Simulator(demo_plan.SCENARIO, first, span, seed=seed)
    story = list(demo_plan.phases())
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6,.0f} events/s"),
        TimeElapsedColumn(),
    )
    console.print(
        f"playing {span / 60:.0f} minutes of production traffic at {demo_plan.SPEEDUP:.0f}x "
        f"({count:,} events, {rate:,.0f}/s; a 60 s window closes every "
        f"{60 / demo_plan.SPEEDUP:.0f} s)",
        soft_wrap=True,
    )
    with (
        EventPublisher(settings.kafka, settings.topics.events.name, settings.publisher) as pub,
        Progress(*columns, console=console, transient=True) as progress,
    ):
        task = progress.add_task("events", total=count, rate=0.0)
        started = time.monotonic()
        step = span / count
        for sent, event in enumerate(simulator.events(count)):
            offset = sent * step
            while story and offset >= story[0].at * span:
                phase = story.pop(0)
                moment = first + timedelta(seconds=phase.at * span)
                console.print(f"\n[bold cyan]▶ {moment:%H:%M} UTC[/] {phase.text}", soft_wrap=True)
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            pub.publish(event)
            if sent % 200 == 0:
                elapsed = max(time.monotonic() - started, 1e-9)
                progress.update(task, completed=sent, rate=sent / elapsed)
        progress.update(task, completed=count)
        if not pub.flush(30):
            raise DemoError("the broker did not take every event within 30 s")
        dropped = pub.stats.dropped_total
    if dropped:
        raise DemoError(f"{dropped} events were not delivered to the embedded broker")
    console.print(f"\nsent {count:,} events in {time.monotonic() - started:.0f} s")
    return (first + timedelta(seconds=span)).timestamp()


def _settle(settings: Settings, end: float) -> None:
    """Wait until the merge stage has judged the last window that can close (the one ending
    before the last event time minus the allowed lateness), or give up after a while."""

    windows = settings.detectors.windows
    target = int((end - windows.allowed_lateness_s) // windows.size_s * windows.size_s)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(VerdictsError):
            latest = read_latest(settings.kafka, settings.topics.verdicts.name, timeout_s=5)
            if any(v.window_end >= target for v in latest.verdicts.values()):
                return
        time.sleep(0.5)


def _latest_verdicts(settings: Settings) -> list[Any]:

    try:
        latest = read_latest(settings.kafka, settings.topics.verdicts.name, timeout_s=10)
    except VerdictsError as exc:
        raise DemoError(str(exc)) from None
    return sorted(latest.verdicts.values(), key=lambda v: v.cohort)


def _print_verdicts(console: Console, verdicts: list[Any]) -> None:

    if not verdicts:
        console.print("[yellow]no canary verdicts were published[/]")
        return
    console.print(verdicts_table(verdicts, "canary verdicts (driftnet.verdicts)"))


def _print_summary(console: Console, settings: Settings, directory: Path) -> None:

    harvest = Harvest.at(settings.harvest.location)
    record_id: str | None = None
    try:
        for title, sql in demo_plan.summary_queries():
            console.print(f"\n[bold]{title}[/]\n[dim]{sql}[/]", soft_wrap=True)
            result = harvest.run(sql)
            cells = [tuple(row.values()) for row in result.to_pylist()[:40]]
            console.print(query_table(result.column_names, cells))
        rows = harvest.run(
            "select record_id from failures where kind = 'regression' and arm = 'canary' "
            "order by latency_ms desc limit 1"
        ).to_pylist()
        record_id = rows[0]["record_id"] if rows else None
    except QueryError as exc:
        console.print(f"[yellow]the harvest could not be queried:[/] {exc}")
    config = _shown(directory / "driftnet.toml")
    console.print("\n[bold]dig further[/] (DuckDB over the harvest; no broker needed):")
    for command in demo_plan.dig_commands(driftnet_command(), config, record_id):
        console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)


__all__ = ["DemoError", "run_demo"]
