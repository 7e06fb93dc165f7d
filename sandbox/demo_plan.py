"""What ``driftnet demo`` plays and shows, as pure data: the story's phases, the worker's
settings file, the summary queries and the commands to dig further. No broker, no clock.

The demo plays the simulator's ``demo`` scenario: 24 minutes of event time at 30x, so every
60-second window closes every 2 wall seconds and the whole story takes under a minute. Its
alert routes wait 30x less than the defaults too (1 s before a group's first message, 3 s
between updates): a window is 2 s here, not a minute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from driftnet.sandbox.simulation import SCENARIOS, Scenario

SCENARIO: Final = SCENARIOS["demo"]
DURATION_S: Final = 24 * 60.0
"""Event time the demo covers: 24 one-minute windows."""
SPEEDUP: Final = 30.0
"""Event time per wall second: a window closes every 2 s."""
RATE: Final = 800.0
"""Events per wall second: about 1,600 a window, enough for the canary judge to decide in a
window or two of an incident."""
EVENTS: Final = round(RATE * DURATION_S / SPEEDUP)
EVENTS_PARTITIONS: Final = 2
"""Partitions of the demo's events topic: with 2, every one carries a cohort that sends from
the first event to the last (a test checks it), so windows close on the watermarks as the
story plays; with the default 4, one gets none of the story's six cohorts."""
GROUP_WAIT_S: Final = 1.0
GROUP_INTERVAL_S: Final = 3.0
MARKER: Final = ".driftnet-demo"
"""The file that marks a folder as the demo's own, so a rerun may clear it."""


@dataclass(frozen=True, slots=True)
class Phase:
    """A turn of the story: from this share of the event time on, what happens, and the
    canary alerts it causes (by service): those that fire, those that resolve."""

    at: float
    text: str
    fires: tuple[str, ...] = ()
    resolves: tuple[str, ...] = ()


def phases() -> tuple[Phase, ...]:
    """The story, in order, from the scenario's own shares of the duration."""
    rollback, worse = SCENARIO.also
    return (
        Phase(0.0, "healthy traffic: 3 services, each with a canary release on 25% of its calls"),
        Phase(SCENARIO.incident_at, "support-chat's canary gets 80% slower",
              fires=_service(SCENARIO)),
        Phase(rollback.incident_at, f"{rollback.description}; {worse.description} "
              "(refusals, scores, ratings)", fires=_service(worse), resolves=_service(rollback)),
    )  # fmt: skip


def _service(scenario: Scenario) -> tuple[str]:
    assert scenario.service is not None, "each turn of the demo's story hits one service"
    return (scenario.service,)


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string


def worker_config(
    bootstrap: str,
    directory: Path,
    *,
    slack_channel: str | None,
    query_command: str = "driftnet query",
) -> str:
    """The settings file the demo's worker (and the printed commands) use; with a Slack
    channel, alerts go there too (the token stays in the environment, never in the file).
    ``query_command`` starts each alert's query line (the demo passes its own
    ``driftnet --config FILE query``, so the line pastes as it is)."""
    receivers = '["topic", "slack"]' if slack_channel else '["topic"]'
    # Declared, so the file stays valid without the token (the printed commands read it)
    slack = (
        f'\n[alerts.receivers.slack]\ntype = "slack"\nchannel = {_toml_string(slack_channel)}\n'
        if slack_channel
        else ""
    )
    return f"""# Written by `driftnet demo`: the settings its worker ran with. The commands it printed
# read the harvest through this file; the broker was in memory and is gone.

[kafka]
bootstrap_servers = {_toml_string(bootstrap)}
client_id = "driftnet-demo"

[worker]
app_id = "driftnet-demo"
data_dir = {_toml_string(str(directory / "worker"))}
rebalance_timeout_s = 1.5
report_interval_s = 10

# /health and /metrics on a free port (never a port another worker here holds): the
# worker's log says where
[http]
port = 0

# Two events partitions, each with a cohort that sends from the first event to the last, so
# windows close on the watermarks as the story plays: a partition with no traffic would hold
# every window open for detectors.windows.idle_timeout_s (30 s), and with the default 4
# partitions one gets none of the story's six cohorts.
[topics.events]
partitions = {EVENTS_PARTITIONS}

[harvest]
location = {_toml_string(str(directory / "harvest"))}
group_id = "driftnet-demo-harvest"

[harvest.rotation]
idle_s = 2
max_age_s = 5

[alerts]
query_command = {_toml_string(query_command)}

# The watchdog, as by default, to the topic only
[[alerts.routes]]
match = {{ rule = "driftnet.watchdog" }}
receivers = ["topic"]
group_by = ["rule"]
group_wait_s = 0

# Everything else to the alerts topic (the demo prints what arrives there) and, with a Slack
# token, to Slack; a window lasts 2 s here, so groups wait 30x less than by default
[[alerts.routes]]
receivers = {receivers}
group_wait_s = {GROUP_WAIT_S}
group_interval_s = {GROUP_INTERVAL_S}
{slack}"""


def summary_queries() -> list[tuple[str, str]]:
    """(title, SQL) of the DuckDB summary printed at the end."""
    return [
        (
            "what was harvested, by service and variant",
            "select service, variant, kind, count(*) as records "
            "from failures group by all order by service, variant, kind",
        ),
        (
            "top failure reasons of single calls",
            "select service, variant, reason, count(*) as failures from failures "
            "where kind = 'rule' group by all order by failures desc limit 8",
        ),
        (
            "the canaries' regression packs: their worst requests and matched baseline ones",
            "select service, arm, reasons[1].subject as metric, count(*) as n, "
            "round(median(latency_ms)) as median_ms, "
            "round(avg(scores['faithfulness']), 2) as faith "
            "from failures where kind = 'regression' group by all order by all",
        ),
    ]


def dig_commands(driftnet: str, config: str, record_id: str | None) -> list[str]:
    """The exact commands to go further, against the demo's harvest."""
    base = f"{driftnet} --config {config}"
    commands = [
        f'{base} query "select release, reason, count(*) from failures group by all order by 3 desc"',
        f"{base} harvest reasons --since 2h",
        f'{base} query "select event_id, latency_ms, reasons[1].message as why from failures '
        "where kind = 'regression' and arm = 'canary' and service = 'support-chat' "
        'order by latency_ms desc limit 5"',
        f"{base} export --format eval --kind regression --service search-summarizer "
        "-o search-summarizer-evals.jsonl",
    ]
    if record_id is not None:
        commands.insert(2, f"{base} harvest show {record_id}")
    return commands
