"""deploy/: the `monitoring` profile of docker-compose.yml (Prometheus and Grafana), checked
without a Docker engine against the repo and the worker's real ``/metrics``.

Every metric the Grafana dashboard queries is one that a worker, assembled as compose runs it
(its settings read from compose's environment, its app built by ``build_app``), puts on
``/metrics``, with the labels the queries use; Prometheus scrapes that worker where compose
serves it; Grafana's provisioning comes from files of the repo and names the datasource the
dashboard reads. The PromQL is read by a small tokenizer (:func:`read_promql`): no PromQL parser
is installed, and none is worth a dependency for this.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, get_args
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from driftnet.detectors.canary.verdict import Outcome
from driftnet.detectors.families.registry import REGISTRY
from driftnet.streams.app import build_app
from driftnet.streams.ops.counters import Counters
from driftnet.streams.ops.metrics import AppMetrics
from driftnet.streams.ops.preflight import with_otlp
from driftnet.streams.ops.status import AppStatus
from tests.conftest import ROOT
from tests.project.test_compose import (
    _driftnet_services,
    _environment,
    _published,
    _services,
    _settings_in,
    _volume_mounts,
)

DEPLOY = ROOT / "deploy"
DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "driftnet.json"
PROMETHEUS_FILE = DEPLOY / "prometheus" / "prometheus.yml"
DATASOURCES_DIR = DEPLOY / "grafana" / "provisioning" / "datasources"
PROVIDERS_DIR = DEPLOY / "grafana" / "provisioning" / "dashboards"
PROFILE = "monitoring"

TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus adds to every series it scrapes."""
PROMETHEUS_SERIES: dict[str, frozenset[str]] = {"up": frozenset()}
"""Series Prometheus makes itself at each scrape (not on ``/metrics``) that panels may query."""
GRAFANA_VARIABLES = frozenset({"__rate_interval", "__interval", "__range", "__all"})
"""Grafana's own variables."""

# -- reading PromQL ----------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


AGGREGATIONS = _words(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk "
    "limit_ratio"
)
FUNCTIONS = _words(
    "abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes "
    "clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year "
    "days_in_month deg delta deriv double_exponential_smoothing end exp floor "
    "histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev "
    "histogram_stdvar histogram_sum holt_winters hour idelta increase irate label_join "
    "label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time "
    "minute month pi predict_linear present_over_time quantile_over_time rad rate resets round "
    "scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt start "
    "stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year"
)
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})
MATCH_OPERATORS = frozenset({"=", "!=", "=~", "!~"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]+\}|\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[A-Za-z0-9_]*)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],:@])
    """,
    re.VERBOSE,
)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Query:
    """What one PromQL expression reads."""

    metrics: set[str] = field(default_factory=set)
    matchers: dict[str, set[str]] = field(default_factory=dict)
    """Label names each metric is selected by (``{reason="x"}``)."""
    grouping: set[str] = field(default_factory=set)
    """Label names of ``by``, ``without``, ``on``, ``ignoring``, ``group_left/right``."""
    variables: set[str] = field(default_factory=set)
    """Grafana variables (``$instance``, ``${datasource}``, ``$__rate_interval``)."""
    unknown_functions: set[str] = field(default_factory=set)
    nameless: bool = False
    """A selector without a metric name (``{__name__=~"..."}``): its metrics are unknown."""


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        if match is None:
            raise ValueError(f"PromQL this reader does not know at {expr[position:]!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def read_promql(expr: str) -> Query:
    """The metric names, label names, variables and unknown functions of ``expr``: a name
    followed by ``(`` is a function or aggregation; one after ``by``/``without``/``on``/... or
    inside ``{}`` is a label; ``[...]`` holds durations; every other name is a metric."""
    query = Query()
    tokens = _tokens(expr)
    for braced, bare in _VARIABLE.findall(expr):  # in strings too: instance=~"$instance"
        query.variables.add(braced or bare)
    index = 0

    def labels_until(closing: str) -> set[str]:
        nonlocal index
        found = set()
        index += 1
        while index < len(tokens) and tokens[index][1] != closing:
            kind, text = tokens[index]
            operator = tokens[index + 1][1] if index + 1 < len(tokens) else ""
            if kind == "name" and (closing == ")" or operator in MATCH_OPERATORS):
                found.add(text)
            index += 1
        return found

    while index < len(tokens):
        kind, text = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text == "[":
            while tokens[index][1] != "]":
                index += 1
        elif text == "{":
            labels_until("}")
            query.nameless = True
        elif kind == "name":
            word = text.lower()
            if word in GROUPING:
                if following == "(":
                    index += 1
                    query.grouping |= labels_until(")")
            elif word in KEYWORDS:
                pass
            elif word in AGGREGATIONS and following.lower() in {"by", "without"}:
                pass  # sum by (reason) (...)
            elif following == "(":
                if word not in AGGREGATIONS and text not in FUNCTIONS:
                    query.unknown_functions.add(text)
            else:
                query.metrics.add(text)
                selected = query.matchers.setdefault(text, set())
                if following == "{":
                    index += 1
                    selected |= labels_until("}")
        index += 1
    return query


# -- the dashboard -----------------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),)?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")


def _queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, set[str]]]:
    """``(where, PromQL, label names it needs)`` of every panel target and query variable."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"], set()
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        text = variable["query"]
        text = text["query"] if isinstance(text, dict) else text
        values = _LABEL_VALUES.match(text.strip())
        assert values is not None, f"variable {variable['name']}: not label_values(): {text!r}"
        selector, label = values.groups()
        assert selector, f"variable {variable['name']}: label_values without a metric"
        yield f"variable {variable['name']!r}", selector, {label}


# -- the worker's /metrics ---------------------------------------------------------------------

Exposition = dict[str, frozenset[str]]
"""Each series name on ``/metrics`` -> the label names it carries."""


def _exposition(text: str) -> tuple[Exposition, dict[str, set[str]]]:
    """The series names and their labels, and each family's series names."""
    labels: dict[str, set[str]] = {}
    families: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
            families.setdefault(family.name, set()).add(sample.name)
    return {name: frozenset(names) for name, names in labels.items()}, families


@dataclass
class Worker:
    """What compose's worker serves on ``/metrics``."""

    series: Exposition
    families: dict[str, set[str]]


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Worker:
    """``/metrics`` of the worker as compose runs it: its settings are those compose's
    environment gives ``driftnet worker`` (through the image's entrypoint), with the OTLP
    ingest on (compose's ``topics`` creates its topic, so start-up turns it on) and the
    container's folders moved to a temporary one; the app is built by ``build_app``, as
    ``driftnet worker`` builds it. What only a broker and traffic add is added through the
    same seams: the lag the broker answers, a window closed, a finding and a verdict."""
    folder = tmp_path_factory.mktemp("compose-worker")
    with pytest.MonkeyPatch.context() as monkeypatch:
        settings = _settings_in(_services()["worker"], monkeypatch)
    settings = with_otlp(settings, topic_exists=True)
    settings = settings.model_copy(
        update={
            "worker": settings.worker.model_copy(update={"data_dir": str(folder / "worker")}),
            "harvest": settings.harvest.model_copy(update={"location": str(folder / "harvest")}),
        }
    )
    status = AppStatus(AppMetrics(detection=settings.worker.detect))
    build_app(settings, Counters(), status)
    assert status.detection is not None, "compose's worker runs detection"

    async def lag() -> int:
        return 0

    status.lag = lag
    detection = status.detection
    detection.window_lag = lambda now: 42.0  # type: ignore[method-assign]
    detection.tally.findings[next(iter(REGISTRY))] += 1
    detection.tally.verdicts[get_args(Outcome)[0]] += 1
    try:
        body, content_type = asyncio.run(status.render_metrics())
    finally:
        detection.close()
    assert content_type.startswith("text/plain")
    series, families = _exposition(body.decode())
    return Worker(series, families)


def problems(dashboard: dict[str, Any], series: Exposition) -> list[str]:
    """Everything a query of ``dashboard`` reads that ``series`` (a worker's ``/metrics``, and
    what Prometheus adds) does not have, and every function PromQL does not know."""
    known = {
        name: labels | TARGET_LABELS for name, labels in {**series, **PROMETHEUS_SERIES}.items()
    }
    found = []
    for where, expr, needed in _queries(dashboard):
        query = read_promql(expr)
        if not query.metrics:
            found.append(f"{where}: no metric in {expr!r}")
        if query.nameless:
            found.append(f"{where}: a selector without a metric name in {expr!r}")
        found.extend(
            f"{where}: {function}() is no PromQL function"
            for function in sorted(query.unknown_functions)
        )
        found.extend(
            f"{where}: {metric} is not on the worker's /metrics"
            for metric in sorted(query.metrics - set(known))
        )
        found.extend(
            f"{where}: {metric} has no label {label!r}"
            for metric, selected in sorted(query.matchers.items())
            for label in sorted(selected - known.get(metric, TARGET_LABELS))
        )
        carried = set(TARGET_LABELS).union(*(known.get(m, set()) for m in query.metrics))
        found.extend(
            f"{where}: no metric of {expr!r} has a label {label!r}"
            for label in sorted((query.grouping | needed) - carried)
        )
    return found


# -- the tokenizer -----------------------------------------------------------------------------

READ_CASES = {
    "a bare name": ("driftnet_healthy", {"driftnet_healthy"}, set()),
    "matchers and a grafana variable": (
        'driftnet_dead_letters_total{reason!="empty_batch", instance=~"$instance"}',
        {"driftnet_dead_letters_total"},
        set(),
    ),
    "by before and after, a range": (
        "sum by (reason) (rate(a_total[$__rate_interval])) + sum(rate(b_total[5m])) by (topic)",
        {"a_total", "b_total"},
        {"reason", "topic"},
    ),
    "a histogram quantile": (
        "histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket{job='d'}[1h30m])))",
        {"x_seconds_bucket"},
        {"le"},
    ),
    "vector matching, keywords, offset, subquery, strings": (
        "max_over_time(a[10m:1m]) / on (instance) group_left (release) b offset 1h > bool 0 "
        'and c unless label_replace(d, "x", "$1", "instance", "(.*):.*")',
        {"a", "b", "c", "d"},
        {"instance", "release"},
    ),
    "numbers that look like names": ("sum(rate(a[5m])) * 1e3 + 0x1F - inf", {"a"}, set()),
}


@pytest.mark.parametrize("case", list(READ_CASES))
def test_promql_reader_finds_metrics_and_grouping_labels(case: str) -> None:
    """The tokenizer names the metrics and the grouping labels of an expression, and takes no
    function, keyword, label, duration, string or variable for a metric."""
    expr, metrics, grouping = READ_CASES[case]
    query = read_promql(expr)
    assert query.metrics == metrics
    assert query.grouping == grouping
    assert not query.unknown_functions
    assert not query.nameless


def test_promql_reader_reports_unknown_functions_variables_and_matcher_labels() -> None:
    """A misspelt function is reported, Grafana variables are collected, and matcher label
    names are kept per metric."""
    query = read_promql('rat(a{reason="x",instance=~"${instance:regex}"}[$__rate_interval])')
    assert query.unknown_functions == {"rat"}
    assert query.variables == {"instance", "__rate_interval"}
    assert query.matchers == {"a": {"reason", "instance"}}
    with pytest.raises(ValueError, match="does not know"):
        read_promql("a # a comment")


# -- the dashboard against the worker's /metrics -----------------------------------------------


def test_every_query_reads_metrics_and_labels_the_worker_exposes(worker: Worker) -> None:
    """Every metric each panel (and each variable) queries is a series on the /metrics of
    compose's worker -- histogram and counter suffixes included -- or Prometheus's ``up``, with
    the labels the query selects and groups by, through functions PromQL has."""
    assert "driftnet_detector_seconds_bucket" in worker.series  # the text is a real worker's
    assert "driftnet_consumer_lag_messages" in worker.series
    found = problems(_dashboard(), worker.series)
    assert not found, "\n".join(found)


def _replace_in_first_expr(dashboard: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    broken = copy.deepcopy(dashboard)
    for panel in _panels(broken):
        for target in panel.get("targets", []):
            if old in target["expr"]:
                target["expr"] = target["expr"].replace(old, new)
                return broken
    raise AssertionError(f"no query has {old!r}")


BREAKAGES = {
    "a misspelt metric": (
        "driftnet_consumer_lag_messages",
        "driftnet_consumer_lag",
        "driftnet_consumer_lag is not on the worker's /metrics",
    ),
    "the old name of a renamed metric": (
        "driftnet_alerts_dead_lettered_total",
        "driftnet_alerts_dropped_total",
        "driftnet_alerts_dropped_total is not on the worker's /metrics",
    ),
    "a histogram without its suffix": (
        "driftnet_detector_seconds_bucket",
        "driftnet_detector_seconds",
        "driftnet_detector_seconds is not on the worker's /metrics",
    ),
    "a counter without _total": (
        "driftnet_events_total",
        "driftnet_events",
        "driftnet_events is not on the worker's /metrics",
    ),
    "a label the metric lacks": ("by (reason)", "by (reasons)", "has a label 'reasons'"),
    "a misspelt function": ("rate(", "rat(", "rat() is no PromQL function"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_query_is_caught(breakage: str, worker: Worker) -> None:
    """The check above fails on a dashboard with one query broken."""
    old, new, expected = BREAKAGES[breakage]
    found = problems(_replace_in_first_expr(_dashboard(), old, new), worker.series)
    assert any(expected in problem for problem in found), found


def _start_time(family: str, families: dict[str, set[str]]) -> bool:
    """Whether ``family`` is the ``_created`` time of another (a counter's or histogram's start,
    written by prometheus-client as a gauge of its own): no metric to plot."""
    return family.endswith("_created") and family.removesuffix("_created") in families


def test_every_driftnet_metric_is_on_the_dashboard(worker: Worker) -> None:
    """Each ``driftnet_*`` family of the worker's /metrics is read by at least one panel, so a
    new metric gets a panel (and a renamed one does not silently leave its panel blank)."""
    read = set().union(*(read_promql(expr).metrics for _, expr, _ in _queries(_dashboard())))
    missing = {
        family
        for family, names in worker.families.items()
        if family.startswith("driftnet_")
        and not names & read
        and not _start_time(family, worker.families)
    }
    assert missing == set(), f"no panel reads {sorted(missing)}"


def test_dashboard_variables_datasource_and_layout() -> None:
    """Panels read the datasource through the ``datasource`` variable, whose default is the
    provisioned Prometheus; every ``$variable`` a query uses is defined; panel ids are unique
    and no two panels overlap on the 24-column grid."""
    dashboard = _dashboard()
    assert dashboard["uid"]
    assert dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    [provisioned] = _datasources()
    assert variables["datasource"]["current"]["value"] == provisioned["uid"]
    reference = {"type": "prometheus", "uid": "${datasource}"}
    ids: set[int] = set()
    cells: set[tuple[int, int]] = set()
    for panel in _panels(dashboard):
        assert panel["id"] not in ids, f"panel id {panel['id']} twice"
        ids.add(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} queries nothing"
        assert panel["datasource"] == reference, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == reference, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == reference
    for where, expr, _ in _queries(dashboard):
        undefined = read_promql(expr).variables - set(variables) - GRAFANA_VARIABLES
        assert not undefined, f"{where}: undefined variables {undefined}"


# -- the compose profile -----------------------------------------------------------------------


def _yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a mapping"
    return loaded


def _datasources() -> list[dict[str, Any]]:
    return [
        source
        for path in sorted(DATASOURCES_DIR.glob("*.y*ml"))
        for source in _yaml(path).get("datasources", [])
    ]


def _repo_path(service: dict[str, Any], container_path: str) -> Path:
    """The file of the repo a service sees at ``container_path`` through a bind mount."""
    wanted = PurePosixPath(container_path)
    for source, target in _volume_mounts(service):
        if source.startswith(".") and wanted.is_relative_to(target):
            return ROOT / source / wanted.relative_to(target)
    raise AssertionError(f"{container_path} is not bind-mounted from the repo")


def _flags(command: list[str]) -> dict[str, str]:
    return dict(word.removeprefix("--").split("=", 1) for word in command if "=" in word)


def test_monitoring_services_are_a_profile_of_their_own() -> None:
    """Prometheus and Grafana run only with ``--profile monitoring``, publish on the host's
    loopback only, and Grafana waits for Prometheus."""
    services = _services()
    monitoring = {name for name, svc in services.items() if PROFILE in svc.get("profiles", [])}
    assert monitoring == {"prometheus", "grafana"}
    for name in monitoring:
        assert services[name]["profiles"] == [PROFILE]
        assert "build" not in services[name]
        assert {ip for ip, _, _ in _published(services[name])} == {"127.0.0.1"}, name
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    assert set(services["grafana"]["depends_on"]) == {"prometheus"}


def test_prometheus_scrapes_the_worker_where_compose_serves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prometheus reads the repo's prometheus.yml, and its targets are exactly
    ``<service>:<http.port>`` of every driftnet service that serves /metrics (the worker; a
    ``driftnet sink`` service would be one more), each listening on every interface."""
    prometheus = _services()["prometheus"]
    config_path = _flags(prometheus["command"])["config.file"]
    assert _repo_path(prometheus, config_path) == PROMETHEUS_FILE
    config = _yaml(PROMETHEUS_FILE)
    expected = set()
    for name, service in _driftnet_services().items():
        if service["command"][1] not in {"worker", "sink"}:
            continue
        http = _settings_in(service, monkeypatch).http
        assert http.enabled, f"{name} serves no /metrics"
        assert http.host == "0.0.0.0", f"{name}: /metrics unreachable from other containers"
        expected.add(f"{name}:{http.port}")
    assert expected, "compose runs no worker"
    targets = set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job.get("scheme", "http") == "http"
        for static in job["static_configs"]:
            targets |= set(static["targets"])
    assert targets == expected


def test_grafana_provisioning_is_mounted_from_the_repo() -> None:
    """Grafana's datasource and dashboard provisioning folders are bind mounts of
    deploy/grafana/provisioning/; the dashboard provider's path is a mount of the folder that
    holds driftnet.json (also the home dashboard); the datasource is compose's Prometheus at
    the port it listens on, with Prometheus's scrape interval."""
    services = _services()
    grafana = services["grafana"]
    provisioning = PurePosixPath("/etc/grafana/provisioning")
    assert _repo_path(grafana, str(provisioning / "datasources")) == DATASOURCES_DIR
    assert _repo_path(grafana, str(provisioning / "dashboards")) == PROVIDERS_DIR
    providers = [
        provider
        for path in sorted(PROVIDERS_DIR.glob("*.y*ml"))
        for provider in _yaml(path)["providers"]
    ]
    assert [provider["type"] for provider in providers] == ["file"]
    folder = _repo_path(grafana, providers[0]["options"]["path"])
    assert DASHBOARD_FILE.parent == folder
    home = _environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert _repo_path(grafana, home) == DASHBOARD_FILE

    [source] = _datasources()
    assert source["type"] == "prometheus"
    url = urlsplit(source["url"])
    assert url.hostname == "prometheus"
    prometheus = services["prometheus"]
    listen = _flags(prometheus["command"]).get("web.listen-address", ":9090")
    assert url.port == int(listen.rpartition(":")[2])
    assert url.port in {container for _, _, container in _published(prometheus)}
    interval = _yaml(PROMETHEUS_FILE)["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == interval
