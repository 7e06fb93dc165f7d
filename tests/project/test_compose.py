"""docker-compose.yml, the Dockerfile and .dockerignore: everything that can be checked
without a Docker engine (none runs on the development machines), against the repo itself."""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from packaging.requirements import Requirement

from driftnet.cli.main import cli
from driftnet.storage.settings import HarvestSettings
from driftnet.streams.settings import (
    CONFIG_ENV_VAR,
    ENV_PREFIX,
    Settings,
    WorkerSettings,
    load_settings,
)
from tests.conftest import ROOT
from tests.support.rooms import rooms

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

HOST_ENVIRONMENTS: dict[str, dict[str, str]] = {
    "host-unset": {},
    "host-set": {
        "SLACK_BOT_TOKEN": "xoxb-placeholder",
        "SLACK_CHANNEL": "#llm-oncall",
        "KAFKA_HOST_PORT": "19094",
        "SIMULATE_SCENARIO": "error-burst",
    },
}
"""The shell compose interpolates from: nothing set, and every variable the file reads set."""

_BRACED = re.compile(r"\$\{([^}]*)\}")
_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_OPERAND = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?$", re.DOTALL)


def _interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Compose's interpolation of the forms this file may use: ``$$``, ``$NAME``,
    ``${NAME}``, ``${NAME:-default}`` (unset or empty) and ``${NAME-default}`` (unset)."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group(2) is not None:
            return environ.get(match.group(2), "")
        operand = _OPERAND.match(match.group(1))
        if operand is None:
            raise ValueError(f"interpolation this test does not know: {match.group(0)!r}")
        name, operator, default = operand.groups()
        value = environ.get(name)
        if operator == ":-" and not value:
            return str(default)
        if operator == "-" and value is None:
            return str(default)
        return value or ""

    return _REFERENCE.sub(one, text)


def _resolve(node: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return _interpolate(node, environ)
    if isinstance(node, list):
        return [_resolve(item, environ) for item in node]
    if isinstance(node, dict):
        return {key: _resolve(value, environ) for key, value in node.items()}
    return node


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)


def _raw() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict), "docker-compose.yml is not a mapping"
    return loaded


def _compose(host: str = "host-unset") -> dict[str, Any]:
    """The compose file as a container sees it, interpolated from one of the host shells."""
    return dict(_resolve(_raw(), HOST_ENVIRONMENTS[host]))


def _services(host: str = "host-unset") -> dict[str, dict[str, Any]]:
    services = _compose(host)["services"]
    assert isinstance(services, dict)
    return services


def _driftnet_services(host: str = "host-unset") -> dict[str, dict[str, Any]]:
    """The services that run the image this repo's Dockerfile builds."""
    return {name: svc for name, svc in _services(host).items() if "build" in svc}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        pairs = (item.split("=", 1) for item in raw)
        return {pair[0]: pair[1] if len(pair) == 2 else "" for pair in pairs}
    assert isinstance(raw, dict)
    return {str(key): value for key, value in raw.items()}


def _build(service: dict[str, Any]) -> tuple[Path, Path]:
    """The build context and Dockerfile of a service."""
    build = service["build"]
    spec = {"context": build} if isinstance(build, str) else build
    context = ROOT / spec.get("context", ".")
    return context, context / spec.get("dockerfile", "Dockerfile")


def _volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """``(source, target)`` of each volume entry, short or long syntax."""
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            source, target = entry.split(":")[:2]
        else:
            source, target = entry.get("source", ""), entry["target"]
        mounts.append((source, target))
    return mounts


def _published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """``(host ip, host port, container port)`` of each published port (short syntax)."""
    ports = []
    for entry in service.get("ports", []):
        assert isinstance(entry, str), f"ports entry {entry!r}: use the short syntax"
        parts = entry.split(":")
        assert len(parts) == 3, f"ports entry {entry!r} should name the host address"
        ports.append((parts[0], int(parts[1]), int(parts[2])))
    return ports


# -- the Dockerfile ----------------------------------------------------------------------------


@dataclass
class Stage:
    """One ``FROM`` of the Dockerfile and its instructions, in order."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _stages() -> list[Stage]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{keyword} before any FROM"
            stages[-1].instructions.append((keyword, args))
    assert stages, "the Dockerfile has no FROM"
    return stages


def _exec_form(stage: Stage, keyword: str) -> list[str]:
    """The last ``keyword`` of a stage, which must be in exec (JSON array) form."""
    found = stage.all(keyword)
    assert found, f"the final stage has no {keyword}"
    value = json.loads(found[-1])
    assert isinstance(value, list), f"{keyword} is not in exec form"
    assert all(isinstance(item, str) for item in value)
    return value


def _copies(stage: Stage) -> list[tuple[list[str], str]]:
    """``(sources, destination)`` of each COPY from the build context (not ``--from``)."""
    copies = []
    for args in stage.all("COPY"):
        words = args.split()
        if any(word.startswith("--from") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")]
        copies.append((paths[:-1], paths[-1]))
    return copies


def _entrypoint_code() -> str:
    entrypoint = _exec_form(_stages()[-1], "ENTRYPOINT")
    assert entrypoint[:2] == ["python", "-c"], entrypoint
    assert len(entrypoint) == 3, entrypoint
    return entrypoint[2]


def _container_environment(service_env: Mapping[str, str]) -> dict[str, str]:
    """The DRIFTNET_* environment a command of the image sees: the service's environment
    through the image's real entrypoint (run here with this interpreter)."""
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    done = subprocess.run(
        [sys.executable, "-c", _entrypoint_code(), sys.executable, "-c", dump],
        env=dict(service_env),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, str] = json.loads(done.stdout)
    return {name: value for name, value in seen.items() if name.startswith(ENV_PREFIX)}


def _settings_in(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings ``load_settings`` gives a command of ``service``'s container."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    environment = _environment(service)
    for name, value in _container_environment(environment).items():
        monkeypatch.setenv(name, value)
    return load_settings()


def _leaf(path: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The subcommand that ``driftnet`` + ``path`` names, its names and its arguments."""
    command: click.Command = cli
    names: list[str] = []
    rest = list(path)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        names.append(rest[0])
        command = command.commands[rest.pop(0)]
    assert names, f"{path!r} names no driftnet subcommand"
    assert not isinstance(command, click.Group), f"driftnet {' '.join(names)} is a group"
    return command, names, rest


# -- the compose file --------------------------------------------------------------------------


def test_compose_file_parses_with_the_expected_services() -> None:
    """docker-compose.yml is YAML with kafka, topic creation, the worker, the simulator and
    Prometheus and Grafana (tests/project/test_dashboard.py checks those two)."""
    services = _services()
    assert set(services) == {"kafka", "topics", "worker", "simulator", "prometheus", "grafana"}
    assert services["simulator"]["profiles"] == ["demo"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    assert all("profiles" not in services[name] for name in ("kafka", "topics", "worker"))
    assert services["worker"]["restart"] == "unless-stopped"


def test_every_host_variable_is_exercised() -> None:
    """Every ${VAR} the compose file reads from the shell is set by the "host-set" case."""
    referenced = set()
    for text in _strings(_raw()):
        for inner in _BRACED.findall(text):
            operand = _OPERAND.match(inner)
            assert operand is not None, f"unsupported interpolation ${{{inner}}}"
            referenced.add(operand.group(1))
    assert referenced == set(HOST_ENVIRONMENTS["host-set"])


def test_images_are_pinned_or_built_from_a_dockerfile_in_the_repo() -> None:
    """A pulled image names a version (no implicit or explicit latest); a built one has a
    Dockerfile that exists in its context."""
    for name, service in _services().items():
        if "build" in service:
            context, dockerfile = _build(service)
            assert context.is_dir(), f"{name}: build context {context} is missing"
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
            continue
        image = service["image"]
        repository, _, tag = image.partition("@")[0].rpartition(":")
        assert "@sha256:" in image or (repository and re.search(r"\d", tag)), (
            f"{name}: image {image!r} is not pinned to a version"
        )


def test_driftnet_services_share_one_built_image() -> None:
    """topics, worker and simulator run the same image, built from this repo."""
    services = _driftnet_services()
    assert set(services) == {"topics", "worker", "simulator"}
    assert len({svc["image"] for svc in services.values()}) == 1
    assert {_build(svc) for svc in services.values()} == {(ROOT, DOCKERFILE)}


def test_referenced_files_exist_and_named_volumes_are_declared() -> None:
    """Bind mounts and env files point at files of the repo; every named volume a service
    mounts is declared, and every declared one is mounted."""
    compose = _compose()
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for source, target in _volume_mounts(service):
            assert target.startswith("/"), f"{name}: mount target {target!r} is not absolute"
            if source.startswith((".", "/", "~")):
                assert (ROOT / source).exists(), f"{name}: bind mount {source} is missing"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared"
                used.add(source)
        env_files = service.get("env_file", [])
        for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
            spec = {"path": entry} if isinstance(entry, str) else entry
            if spec.get("required", True):
                assert (ROOT / spec["path"]).is_file(), f"{name}: env_file {spec} is missing"
    assert declared == used


def test_depends_on_names_services_that_start_with_it() -> None:
    """Every depends_on target exists, with a condition compose knows, and none is hidden
    behind a profile the dependant does not share."""
    services = _services()
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for target, spec in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            assert spec["condition"] in conditions, f"{name} -> {target}: {spec}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            missing = set(services[target].get("profiles", [])) - set(service.get("profiles", []))
            assert not missing, f"{name} depends on {target}, only in profiles {missing}"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (
        services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    )


@pytest.mark.parametrize("host", list(HOST_ENVIRONMENTS))
def test_commands_are_real_driftnet_subcommands(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each driftnet service runs a `driftnet` subcommand whose --help works and whose
    options and values parse."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    expected = {"topics": ["topics", "create"], "worker": ["worker"], "simulator": ["simulate"]}
    for name, service in _driftnet_services(host).items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: command should be a list (exec form)"
        assert command[0] == "driftnet", f"{name}: {command}"
        leaf, names, arguments = _leaf(command[1:])
        assert names == expected[name]
        helped = CliRunner().invoke(cli, [*names, "--help"])
        assert helped.exit_code == 0, helped.output
        declared = {opt for param in leaf.params for opt in param.opts}
        for word in arguments:
            if word.startswith("-"):
                assert word.split("=")[0] in declared, f"{name}: unknown option {word}"
        leaf.make_context(f"driftnet {' '.join(names)}", list(arguments))  # raises if invalid


@pytest.mark.parametrize("host", list(HOST_ENVIRONMENTS))
def test_driftnet_environment_variables_are_real_settings(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every DRIFTNET_* variable of a driftnet service is a setting: load_settings, which
    refuses unknown ones, loads what the container sees, and Kafka is reached at kafka:9092."""
    for name, service in _driftnet_services(host).items():
        environment = _environment(service)
        assert all(isinstance(value, str) for value in environment.values()), (
            f"{name}: quote every environment value"
        )
        assert all(var.startswith(ENV_PREFIX) for var in environment), environment
        assert CONFIG_ENV_VAR not in environment
        settings = _settings_in(service, monkeypatch)
        assert settings.kafka.bootstrap_servers == "kafka:9092", name


def test_worker_keeps_its_state_and_the_harvest_on_named_volumes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """worker.data_dir (faust state, alert state) and harvest.location are named volumes of
    the worker, on the directories the image creates for its user."""
    worker = _services()["worker"]
    settings = _settings_in(worker, monkeypatch)
    mounts = {target: source for source, target in _volume_mounts(worker)}
    data_dir = PurePosixPath(settings.worker.data_dir)
    harvest = PurePosixPath(settings.harvest.location)
    assert mounts.get(str(data_dir)) == "worker-state"
    assert mounts.get(str(harvest)) == "harvest"
    workdir = PurePosixPath(_stages()[-1].all("WORKDIR")[-1])
    image_dirs = " ".join(_stages()[-1].all("RUN"))
    for path, default in (  # the relative defaults, as a command run without them sees
        (data_dir, WorkerSettings().data_dir),
        (harvest, HarvestSettings().location),
    ):
        assert path == workdir / str(default), f"{path} is not the image's {workdir / default}"
        assert str(path) in image_dirs, f"the image does not create {path}"


def test_worker_http_endpoint_is_published_and_health_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker binds its HTTP endpoint on all interfaces at http.port, compose publishes
    that port on the host's loopback, and the healthcheck asks /health on it."""
    worker = _services()["worker"]
    http_settings = _settings_in(worker, monkeypatch).model_dump()["http"]
    assert http_settings["enabled"] is True
    assert http_settings["host"] == "0.0.0.0"
    port = http_settings["port"]
    assert ("127.0.0.1", port, port) in _published(worker)
    test = worker["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    urls = re.findall(r"http://127\.0\.0\.1:(\d+)/health\b", test[3])
    assert urls == [str(port)], test


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _run_healthcheck(port: int) -> int:
    code = _services()["worker"]["healthcheck"]["test"][3]
    local = code.replace("http://127.0.0.1:9464/", f"http://127.0.0.1:{port}/")
    assert local != code
    done = subprocess.run([sys.executable, "-c", local], capture_output=True, timeout=60)
    return done.returncode


def test_worker_healthcheck_fails_on_503_and_on_no_answer() -> None:
    """The healthcheck's command exits 0 on a 200 from /health, non-zero on a 503 or when
    nothing listens."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _Health.status = 200
        assert _run_healthcheck(port) == 0
        _Health.status = 503
        assert _run_healthcheck(port) != 0
    finally:
        _Health.status = 200
        server.shutdown()
        server.server_close()
        thread.join()
    assert _run_healthcheck(port) != 0


def test_empty_slack_token_means_no_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    """With SLACK_BOT_TOKEN unset the worker has no Slack receiver (compose passes an empty
    string, which the image's entrypoint drops); with it set, Slack gets token and channel."""
    unset = _settings_in(_services("host-unset")["worker"], monkeypatch).alerts
    assert unset.slack_token is None
    assert "slack" not in unset.all_receivers()
    given = _settings_in(_services("host-set")["worker"], monkeypatch).alerts
    assert given.slack_token is not None
    assert given.slack_token.get_secret_value() == "xoxb-placeholder"
    assert given.all_receivers()["slack"].channel == "#llm-oncall"


def test_entrypoint_drops_only_empty_driftnet_variables() -> None:
    """The image's entrypoint removes empty DRIFTNET_* variables and keeps everything else."""
    code = _entrypoint_code()
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    environment = {
        "DRIFTNET_ALERTS__SLACK_TOKEN": "",
        "DRIFTNET_ALERTS__SLACK_CHANNEL": "#x",
        "OTHER_EMPTY": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-c", dump],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    seen = json.loads(done.stdout)
    assert "DRIFTNET_ALERTS__SLACK_TOKEN" not in seen
    assert seen["DRIFTNET_ALERTS__SLACK_CHANNEL"] == "#x"
    assert seen["OTHER_EMPTY"] == ""
    bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert bare.returncode != 0
    assert "no command given" in bare.stderr


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    found = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


@pytest.mark.parametrize("host", list(HOST_ENVIRONMENTS))
def test_kafka_listeners_reach_containers_and_host(host: str) -> None:
    """Containers bootstrap at an advertised listener bound in the broker; the host's port
    is published on loopback to a listener advertised at that port; the healthcheck asks
    a bound port."""
    services = _services(host)
    env = _environment(services["kafka"])
    bound = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(bound) <= set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in bound
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    assert set(advertised) <= set(bound) - {env["KAFKA_CONTROLLER_LISTENER_NAMES"]}
    controller_port = bound[env["KAFKA_CONTROLLER_LISTENER_NAMES"]][1]
    assert (
        env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
        == f"{env['KAFKA_NODE_ID']}@localhost:{controller_port}"
    )
    internal = {name for name, address in advertised.items() if address == ("kafka", 9092)}
    assert len(internal) == 1, advertised
    assert bound[internal.pop()][1] == 9092
    [(ip, host_port, container_port)] = _published(services["kafka"])
    assert ip == "127.0.0.1"
    external = [name for name, (_, port) in bound.items() if port == container_port]
    assert len(external) == 1
    assert advertised[external[0]] == ("127.0.0.1", host_port)
    expected_port = int(HOST_ENVIRONMENTS[host].get("KAFKA_HOST_PORT", "9092"))
    assert host_port == expected_port
    test = services["kafka"]["healthcheck"]["test"]
    bootstrap = test[test.index("--bootstrap-server") + 1]
    assert int(bootstrap.rpartition(":")[2]) in {port for _, port in bound.values()}


# -- the Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_copy_sources_exist() -> None:
    """Every file or folder the Dockerfile copies from the build context is in the repo and
    not excluded by .dockerignore."""
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [source for stage in _stages() for sources, _ in _copies(stage) for source in sources]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repo"
        for pattern in ignored:
            assert not fnmatch.fnmatch(source, pattern.removeprefix("**/")), (
                f"COPY {source}: excluded by .dockerignore {pattern!r}"
            )


def test_dockerfile_copies_everything_pip_install_reads() -> None:
    """The build stage copies pyproject.toml, its readme, constraints.txt and the folder of every
    room pyproject.toml maps (a new room left out would install without its code)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", "constraints.txt", project["project"]["readme"]}
    needed |= set(rooms().values())
    build = _stages()[0]
    copied = {source.rstrip("/") for sources, _ in _copies(build) for source in sources}
    assert needed <= copied, f"not copied: {sorted(needed - copied)}"


def test_dockerfile_installs_with_constraints_and_no_extras() -> None:
    """The image installs the package with `pip install -c constraints.txt .`, after copying
    constraints.txt, without the dev or embedded extras."""
    build = _stages()[0]
    installs = [
        (index, args)
        for index, (keyword, args) in enumerate(build.instructions)
        if keyword == "RUN" and "pip install" in args
    ]
    assert len(installs) == 1, installs
    index, args = installs[0]
    words = args.split("pip install", 1)[1].split()
    assert "-c" in words, args
    assert words[words.index("-c") + 1] == "constraints.txt", args
    assert "." in words, args
    assert not any("[" in word for word in words), f"extras installed: {args}"
    copied_before = {
        source
        for keyword, copy_args in build.instructions[:index]
        if keyword == "COPY"
        for source in copy_args.split()[:-1]
    }
    assert "constraints.txt" in copied_before


def test_constraints_pin_every_runtime_dependency() -> None:
    """constraints.txt pins each of pyproject.toml's dependencies to a version it allows,
    so the image gets the versions the tests ran with."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        pin = line.split("#")[0].strip()
        if pin:
            name, _, version = pin.partition("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for text in project["project"]["dependencies"]:
        requirement = Requirement(text)
        pinned = pins.get(requirement.name.lower().replace("_", "-"))
        assert pinned, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned, prereleases=True), (
            f"{requirement.name}=={pinned} does not satisfy {requirement.specifier}"
        )


def test_dockerfile_image_runs_driftnet_worker_as_a_user() -> None:
    """The final stage is python:3.11-slim, runs as a non-root user, and its CMD is
    `driftnet worker`, a real subcommand."""
    final = _stages()[-1]
    assert final.base == "python:3.11-slim"
    assert {stage.base for stage in _stages()} == {"python:3.11-slim"}
    user = final.all("USER")
    assert user, "the final stage has no USER"
    assert user[-1] not in {"root", "0"}, user
    assert any("useradd" in run and user[-1] in run for run in final.all("RUN"))
    assert any(f"chown -R {user[-1]}:{user[-1]}" in run for run in final.all("RUN"))
    command = _exec_form(final, "CMD")
    assert command == ["driftnet", "worker"]
    _, names, _ = _leaf(command[1:])
    helped = CliRunner().invoke(cli, [*names, "--help"])
    assert helped.exit_code == 0, helped.output


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    """The build context leaves out the venv, git, driftnet-data and caches."""
    patterns = set(DOCKERIGNORE.read_text().split())
    assert {".venv", ".git", "driftnet-data", ".mypy_cache", ".pytest_cache"} <= patterns
    assert "**/__pycache__" in patterns
