"""What may become an alert: a :class:`Condition` per finding, per failing canary verdict and per
unhealthy worker check, with the labels that make its fingerprint.

Every condition carries its *scope*: the cohort (or worker) whose next window (or check) says
whether it still holds. A window of a cohort that no longer has a condition is a clean window
for every alert of that scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from driftnet.alerts.config import AlertsSettings
from driftnet.alerts.model import Details, Link, Severity, fingerprint_of
from driftnet.alerts.signals import ThemesSignal
from driftnet.detectors.canary.verdict import Verdict
from driftnet.detectors.finding import Finding

DLQ_SPIKE = "driftnet.dlq_spike"
CONSUMER_LAG = "driftnet.consumer_lag"
SINK_FAILING = "driftnet.sink_failing"
WATCHDOG = "driftnet.watchdog"
THEME_NEW = "driftnet.theme_new"
THEME_GROWING = "driftnet.theme_growing"
AT_ONCE = frozenset({WATCHDOG, THEME_NEW, THEME_GROWING})
"""Rules that fire on their first observation, whatever ``for_windows`` says: the watchdog,
and the themes (one ``harvest themes --signal`` run is a week's worth of evidence)."""
THEMES_SCOPE = "themes:"
"""The scope of a ``harvest themes --signal`` run is this and its filters."""


@dataclass(frozen=True, slots=True)
class Condition:
    """An alert's content as one window (or check) shows it."""

    rule: str
    labels: dict[str, str]
    """Including ``rule`` and ``source`` (``detector``, ``canary``, ``driftnet``)."""
    severity: Severity
    summary: str
    description: str
    details: Details
    links: tuple[Link, ...]
    query: str | None
    source_id: str | None

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.rule, self.labels)


def scope_of(cohort: tuple[str, ...]) -> str:
    return "cohort:" + "/".join(cohort)


def _cohort_labels(cohort: tuple[str, ...]) -> dict[str, str]:
    service, environment, release, variant = cohort
    return {"service": service, "environment": environment, "release": release, "variant": variant}


def _links(settings: AlertsSettings, labels: dict[str, str]) -> tuple[Link, ...]:
    if not settings.runbook_url:
        return ()
    values = {"metric": "", **labels}
    try:
        url = settings.runbook_url.format(**values)
    except (KeyError, IndexError, ValueError):
        url = settings.runbook_url
    return (Link(text="Runbook", url=url),)


def _quoted(value: str) -> str:
    return value.replace("'", "''")


def finding_condition(finding: Finding, settings: AlertsSettings) -> Condition:
    """The condition a detector's finding raises."""
    labels = {
        **_cohort_labels(finding.cohort),
        "rule": finding.detector,
        "source": "detector",
        "metric": finding.metric,
        "reference": finding.reference_kind,
    }
    service, _, release, _ = finding.cohort
    query = (
        f'{settings.query_command} "select event_id, latency_ms, cost_usd, reasons[1].message as why '
        f"from failures where kind = 'evidence' and service = '{_quoted(service)}' "
        f"and release = '{_quoted(release)}' and reasons[1].rule_id = '{finding.detector}' "
        'order by detected_at desc limit 20"'
    )
    return Condition(
        rule=finding.detector,
        labels=labels,
        severity=finding.severity,
        summary=f"{'/'.join(finding.cohort[:3])}: {finding.message}"[:300],
        description=finding.message,
        details=Details(
            observed=finding.observed,
            reference=finding.reference,
            threshold=finding.threshold,
            window_start=finding.window_start,
            window_end=finding.window_end,
            effect_size=finding.effect_size,
            p_value=finding.p_value,
        ),
        links=_links(settings, labels),
        query=query,
        source_id=finding.finding_id,
    )


def verdict_condition(verdict: Verdict, settings: AlertsSettings) -> Condition | None:
    """The condition a canary verdict raises: Fail is critical, Marginal a warning; Pass and
    Inconclusive raise nothing (a clean window for the canary's alert)."""
    if verdict.verdict not in ("Fail", "Marginal"):
        return None
    severity: Severity = "critical" if verdict.verdict == "Fail" else "warning"
    labels = {**_cohort_labels(verdict.cohort), "rule": verdict.judge, "source": "canary"}
    failing = ", ".join(m.metric for m in verdict.failing) or "score"
    worst = verdict.failing[0] if verdict.failing else None
    started = datetime.fromtimestamp(verdict.since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = (
        f'{settings.query_command} "select arm, reasons[1].subject as metric, count(*) as requests, '
        "round(median(latency_ms)) as median_ms, round(avg(cost_usd), 5) as cost "
        f"from failures where kind = 'regression' and service = '{_quoted(verdict.service)}' "
        f"and detected_at >= '{started}' group by all order by all\""
    )
    return Condition(
        rule=verdict.judge,
        labels=labels,
        severity=severity,
        summary=(
            f"{verdict.service} canary {verdict.release} ({verdict.environment}): "
            f"{verdict.verdict}, {verdict.recommendation} -- {failing}"
        )[:300],
        description="\n".join(verdict.reasons),
        details=Details(
            observed=None if worst is None else worst.cumulative.canary,
            reference=None if worst is None else worst.cumulative.baseline,
            unit=None if worst is None else worst.unit,
            window_start=verdict.window_start,
            window_end=verdict.window_end,
            sample_size=verdict.canary_requests,
            effect_size=None if worst is None else worst.effect,
            p_value=None if worst is None else worst.p_value,
        ),
        links=_links(settings, labels),
        query=query,
        source_id=verdict.verdict_id,
    )


def health_conditions(
    worker: str,
    messages: int,
    dead_letters: int,
    consumer_lag: int | None,
    sink_error: str | None,
    settings: AlertsSettings,
) -> list[Condition]:
    """What one worker's health check raises: a dead-letter spike, consumer lag beyond the
    bound, a harvest sink that cannot write."""
    found: list[Condition] = []

    def raise_(rule: str, severity: Severity, summary: str, **details: float | int | None) -> None:
        labels = {"rule": rule, "source": "driftnet", "worker": worker}
        found.append(
            Condition(
                rule,
                labels,
                severity,
                summary,
                summary,
                Details(**details),
                _links(settings, labels),
                None,
                None,
            )
        )

    share = dead_letters / messages if messages else 0.0
    if dead_letters >= settings.dlq_spike_min and share >= settings.dlq_spike_share:
        raise_(DLQ_SPIKE, "warning",
               f"{worker}: {dead_letters} of {messages} messages dead-lettered ({share:.0%})",
               observed=share, threshold=settings.dlq_spike_share, sample_size=messages)  # fmt: skip
    if consumer_lag is not None and consumer_lag > settings.max_consumer_lag:
        raise_(CONSUMER_LAG, "warning",
               f"{worker}: {consumer_lag:,} events waiting on the events topic",
               observed=consumer_lag, threshold=settings.max_consumer_lag)  # fmt: skip
    if sink_error:
        raise_(SINK_FAILING, "critical", f"{worker}: the harvest sink cannot write: {sink_error}")
    return found


def watchdog_condition(settings: AlertsSettings) -> Condition:
    """The alert that always fires: its absence downstream means driftnet is down."""
    labels = {"rule": WATCHDOG, "source": "driftnet"}
    return Condition(WATCHDOG, labels, "info", "driftnet watchdog: alerting is alive",
                     "Always firing; page when it stops arriving.", Details(), (), None, None)  # fmt: skip


def theme_conditions(signal: ThemesSignal, settings: AlertsSettings) -> list[Condition]:
    """What one ``harvest themes --signal`` run raises: an ``info`` alert per theme that is
    new (``driftnet.theme_new``) or growing (``driftnet.theme_growing``), labelled with its
    top service, reason and theme ID; the description says how to export it."""
    since = datetime.fromtimestamp(signal.since_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = datetime.fromtimestamp(signal.until_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    found: list[Condition] = []
    for entry in signal.entries:
        rule = THEME_NEW if entry.flag == "new" else THEME_GROWING
        labels = {"rule": rule, "source": "harvest", "service": entry.service,
                  "reason": entry.reason, "theme": entry.theme_id}  # fmt: skip
        terms = ", ".join(entry.terms)
        trend = (
            "new failure theme"
            if entry.flag == "new"
            else f"failure theme grew x{entry.count / max(entry.previous, 1):.1f}"
        )
        summary = f"{entry.service}: {trend} in {entry.reason}: {terms} ({entry.count:,} failures)"
        description = (
            f"Theme {entry.theme_id} of {entry.reason} ({terms}): {entry.count:,} failures "
            f"from {since} to {until} ({entry.share_of_reason:.0%} of {entry.reason}), "
            f"{entry.previous:,} in the period before.\nExport it as an eval set: driftnet "
            f"export --format eval --theme {entry.theme_id} --since {since} --until {until}"
        )
        found.append(
            Condition(
                rule,
                labels,
                "info",
                summary[:300],
                description,
                Details(observed=entry.count, reference=entry.previous, sample_size=entry.count),
                _links(settings, labels),
                None,
                entry.theme_id,
            )
        )
    return found
