"""How alerts are raised, grouped, muted and routed (the ``[alerts]`` table).

Knobs on-call already knows from Prometheus Alertmanager. ``for`` and ``keep_firing_for`` count
*windows* (or health checks), so an alert behaves the same however fast events are replayed;
``group_wait``, ``group_interval`` and ``repeat_interval`` are wall-clock seconds::

    [alerts]
    slack_token = "xoxb-..."                 # or DRIFTNET_ALERTS__SLACK_TOKEN
    runbook_url = "https://wiki.example.com/runbooks/{rule}"

    [[alerts.rules]]
    match = { rule = "latency.*" }           # fnmatch on the alert's labels (and rule, severity)
    for_windows = 3

    [alerts.receivers.oncall]
    type = "slack"
    channel = "#llm-oncall"

    [[alerts.routes]]
    match = { severity = "critical" }
    receivers = ["oncall", "console", "topic"]
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

_STRICT = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def matches(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    """Every matcher's pattern (fnmatch) matches the label of the same name (a missing label
    is the empty string)."""
    return all(fnmatchcase(labels.get(name, ""), pattern) for name, pattern in matchers.items())


class AlertRule(BaseModel):
    """Lifecycle settings for the alerts whose labels match ``match`` (later rules win)."""

    model_config = _STRICT

    match: dict[str, str] = Field(default_factory=dict)
    """Label name -> fnmatch pattern (``rule`` and ``severity`` too); empty matches every alert."""
    for_windows: int | None = Field(None, ge=1)
    """Consecutive windows with the condition before pending turns firing."""
    keep_firing_for_windows: int | None = Field(None, ge=0)
    """Clean windows a firing alert keeps firing through before it resolves (against flapping)."""
    severity: Literal["info", "warning", "critical"] | None = None
    """Overrides the severity the detector gave."""


class Lifecycle(BaseModel):
    """The lifecycle settings that apply to one alert."""

    model_config = _STRICT

    for_windows: int
    keep_firing_for_windows: int
    severity: Literal["info", "warning", "critical"] | None = None


class InhibitRule(BaseModel):
    """While a firing alert matches ``source``, alerts matching ``target`` with the same
    values of the ``equal`` labels are muted (Alertmanager's inhibition)."""

    model_config = _STRICT

    source: dict[str, str]
    """Matchers (label name -> fnmatch pattern) of the firing alert that mutes."""
    target: dict[str, str] = Field(default_factory=dict)
    """Matchers of the alerts it mutes; empty matches every alert."""
    equal: tuple[str, ...] = ()
    """Labels that must have the same value on both alerts."""


class Receiver(BaseModel):
    """Where notifications go."""

    model_config = _STRICT

    type: Literal["console", "topic", "slack", "webhook"]
    """``console``: the worker's log; ``topic``: the alerts topic; ``slack``: a channel, with
    ``alerts.slack_token``; ``webhook``: a Slack incoming webhook at ``url``."""
    channel: str | None = None
    """Slack channel (``slack``)."""
    url: SecretStr | None = None
    """Slack incoming-webhook URL (``webhook``)."""

    @model_validator(mode="after")
    def _complete(self) -> Receiver:
        if self.type == "slack" and not self.channel:
            raise ValueError("a slack receiver needs a channel")
        if self.type == "webhook" and self.url is None:
            raise ValueError("a webhook receiver needs a url")
        return self


class Route(BaseModel):
    """Alerts whose labels match ``match`` go to ``receivers``, grouped by ``group_by``. The
    first matching route wins."""

    model_config = _STRICT

    match: dict[str, str] = Field(default_factory=dict)
    """Label name -> fnmatch pattern (``rule`` and ``severity`` too); empty matches every alert."""
    receivers: tuple[str, ...]
    """Receiver names: built-in or from ``alerts.receivers``."""
    group_by: tuple[str, ...] = ("service", "environment", "release")
    """Labels whose values make a group: one message per group and receiver."""
    group_wait_s: float = Field(10.0, ge=0)
    """How long a new group waits for more alerts before its first notification."""
    group_interval_s: float = Field(60.0, ge=0)
    """How long a group waits between notifications about changes."""
    repeat_interval_s: float = Field(4 * 3600.0, gt=0)
    """How long before a group that has not changed is notified again (a thread reply)."""


DEFAULT_INHIBIT = (
    InhibitRule(
        source={"source": "canary", "severity": "critical"},
        target={"source": "detector"},
        equal=("service", "environment", "release", "variant"),
    ),
)
"""A failing canary mutes the per-metric alerts of the same release: one page, not ten."""


class AlertsSettings(BaseModel):
    """Everything the alerting stage can be told."""

    model_config = _STRICT

    enabled: bool = True
    """Run the alerting stage in ``driftnet worker`` (and send it the window signals)."""
    for_windows: int = Field(2, ge=1)
    """Default ``for``: a detector must fire in 2 consecutive windows (critical ones: 1)."""
    critical_for_windows: int = Field(1, ge=1)
    """Default ``for`` of critical alerts."""
    keep_firing_for_windows: int = Field(2, ge=0)
    """Default: clean windows a firing alert keeps firing through before it resolves."""
    rules: tuple[AlertRule, ...] = ()
    """Lifecycle overrides for the alerts they match, in order (a later match wins)."""
    inhibit: tuple[InhibitRule, ...] = DEFAULT_INHIBIT
    """Inhibition rules; the default one: a failing canary mutes the detector alerts of the
    same release, one page rather than ten."""
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    """Besides the built-in ``console`` and ``topic`` (and ``slack`` when a token is set)."""
    routes: tuple[Route, ...] = ()
    """Tried in order; when none matches, the default route: the watchdog to ``topic`` only,
    everything else to ``console``, ``topic`` and, with a token, ``slack``."""
    slack_token: SecretStr | None = None
    """Slack bot token (``xoxb-...``): adds the built-in ``slack`` receiver, and is what every
    ``slack`` receiver posts with."""
    slack_channel: str = "#driftnet-alerts"
    """The channel of the built-in ``slack`` receiver."""
    slack_base_url: str | None = None
    """Slack's Web API base URL (tests point it at a fake server)."""
    runbook_url: str | None = None
    """A template with ``{rule}``, ``{service}``, ``{environment}``, ``{release}``,
    ``{metric}``: the runbook button of every alert."""
    query_command: str = Field("driftnet query", min_length=1)
    """What the ready-to-paste query line of an alert starts with: the command that reads the
    harvest where on-call runs it, e.g. ``driftnet --config /etc/driftnet.toml query``."""
    watchdog_interval_s: float = Field(60.0, gt=0)
    """How often the always-firing watchdog alert is renewed (a dead man's switch elsewhere
    pages when it stops)."""
    dlq_spike_share: float = Field(0.05, gt=0, le=1)
    """See ``dlq_spike_min``."""
    dlq_spike_min: int = Field(20, ge=1)
    """A worker's health check raises ``driftnet.dlq_spike`` when at least this many messages
    and this share of its messages went to the dead-letter topic since the last check."""
    max_consumer_lag: int = Field(100_000, ge=1)
    """Messages (offsets; a message may hold a batch of events) waiting on the events topic
    beyond which ``driftnet.consumer_lag`` fires."""
    worker_gone_after_reports: int = Field(5, ge=2)
    """A worker that has sent no health check for this many report intervals
    (``worker.report_interval_s``, by the health checks of the workers still reporting) is
    gone: its alerts (``driftnet.sink_failing``...) resolve. A worker restarted under the same
    ``worker.name`` resolves them sooner, by its own clean checks."""
    retry_max_attempts: int = Field(1000, ge=1)
    """A notification whose delivery keeps failing with a retryable error (5xx, 429, a lost
    connection) is given up after this many attempts (retries wait 1 s doubling to 5 min, or
    the receiver's Retry-After) and goes to the alerts dead-letter topic."""
    retry_max_age_s: float = Field(24 * 3600.0, gt=0)
    """A notification whose delivery keeps failing is also given up once it has waited this
    long (24 h: a Slack outage of hours delays the notifications, then each is delivered
    once). Permanent failures (other 4xx, a bad token, a bug in a notifier) are dead-lettered
    at once; either way the receiver goes on with its next notification."""

    def lifecycle(self, labels: dict[str, str], severity: str) -> Lifecycle:
        """The lifecycle of an alert with ``labels`` (including ``rule``) and ``severity``."""
        for_windows = self.critical_for_windows if severity == "critical" else self.for_windows
        keep = self.keep_firing_for_windows
        override: str | None = None
        context = {**labels, "severity": severity}
        for rule in self.rules:
            if matches(rule.match, context):
                for_windows = rule.for_windows or for_windows
                if rule.keep_firing_for_windows is not None:
                    keep = rule.keep_firing_for_windows
                override = rule.severity or override
        return Lifecycle(for_windows=for_windows, keep_firing_for_windows=keep, severity=override)

    def all_receivers(self) -> dict[str, Receiver]:
        builtin = {"console": Receiver(type="console"), "topic": Receiver(type="topic")}
        if self.slack_token is not None:
            builtin["slack"] = Receiver(type="slack", channel=self.slack_channel)
        return {**builtin, **self.receivers}

    def route(self, labels: dict[str, str], severity: str) -> Route:
        """The first route that matches, else the default one."""
        context = {**labels, "severity": severity}
        for route in self.routes:
            if matches(route.match, context):
                return route
        if labels.get("rule") == "driftnet.watchdog":
            return Route(receivers=("topic",), group_by=("rule",), group_wait_s=0)
        defaults = ("console", "topic", "slack") if self.slack_token is not None else (
            "console", "topic")  # fmt: skip
        return Route(receivers=defaults)

    @model_validator(mode="after")
    def _routes_known(self) -> AlertsSettings:
        known = set(self.all_receivers())
        for route in self.routes:
            unknown = sorted(set(route.receivers) - known)
            if unknown:
                raise ValueError(
                    f"route to unknown receiver {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(sorted(known))}"
                )
        return self
