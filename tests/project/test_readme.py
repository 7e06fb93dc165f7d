"""The README, the front door, and the documentation site's pages stay true to the code: each
check reads the page that now holds the text it checks."""

from __future__ import annotations

import re

from driftnet.contract.events import otel_mapping
from tests.conftest import ROOT
from tests.support.docs import DOCS, anchors, documents, headings, page, pages, section

README = (ROOT / "README.md").read_text()


def test_otel_table_matches_the_contract() -> None:
    """The event contract's OpenTelemetry table lists exactly the mapping the contract declares."""
    table = (
        page("event-contract.md")
        .split("<!-- otel-mapping:start -->")[1]
        .split("<!-- otel-mapping:end -->")[0]
    )
    rows = dict(re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|$", table, flags=re.MULTILINE))
    assert rows == otel_mapping()


def test_front_door_commands() -> None:
    """The README gives the two commands, and the Makefile and CI run them."""
    assert "make demo" in README
    assert "make test" in README
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.MULTILINE)
    assert re.search(r"^test:", makefile, flags=re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_is_a_short_front_door() -> None:
    """At most ~300 lines: what driftnet is, the diagram, the two commands (the demo's sample
    between its markers), five minutes on your own Kafka with the brokers and the ports on its
    first screen, the command table and the links; everything else is a page of docs/."""
    assert len(README.splitlines()) <= 300
    sections = [text for level, text in headings(README) if level == 2]
    assert sections[:2] == ["The two commands", "Five minutes on your own Kafka"]
    assert {"The `driftnet` command", "Documentation"} <= set(sections)
    for marker in ("demo-output:start", "demo-output:end", "demo-timing:start", "demo-timing:end"):
        assert README.count(f"<!-- {marker} -->") == 1
    first_screen = "\n".join(section(README, "## Five minutes on your own Kafka").splitlines()[:25])
    for setting in ("DRIFTNET_KAFKA__BOOTSTRAP_SERVERS", "DRIFTNET_HTTP__PORT", "--port"):
        assert setting in first_screen, setting
    top = "\n".join(README.splitlines()[:60])
    assert "DRIFTNET_KAFKA__BOOTSTRAP_SERVERS" in top
    assert "DRIFTNET_HTTP__PORT" in top


def test_readme_links_reach_a_file_and_a_heading() -> None:
    """Every relative link of the README reaches a file of the repository, and its #anchor a
    heading of that page (or of the README)."""
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    assert len(links) > 15
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else ROOT / "README.md"
        assert target.exists(), link
        if anchor:
            assert anchor in anchors(target.read_text(encoding="utf-8")), link


def test_readme_links_every_page() -> None:
    """The README's documentation table links every page of the site."""
    linked = set(re.findall(r"\]\(docs/([a-z-]+\.md)\)", section(README, "## Documentation")))
    assert linked == {p.name for p in pages()} - {"index.md"}
    assert all((DOCS / name).is_file() for name in linked)


def test_command_table_lists_every_command() -> None:
    """Every `driftnet` subcommand (and group subcommand) has a row in the README's table."""
    import click

    from driftnet.cli.main import cli

    table = README.split("## The `driftnet` command")[1].split("\n## ")[0]
    listed = set(re.findall(r"^\| `driftnet ([a-z]+(?: [a-z]+)?)", table, flags=re.MULTILINE))
    commands = set()
    for name, command in cli.commands.items():
        if isinstance(command, click.Group):
            commands |= {f"{name} {sub}" for sub in command.commands}
        else:
            commands.add(name)
    assert {c.split(" [")[0] for c in listed} == commands


def test_dlq_header_table_matches_the_code() -> None:
    """The worker's dead-letter header table (docs/operations.md) names every header the code
    writes."""
    from datetime import UTC, datetime

    from driftnet.contract.decode import decode
    from driftnet.contract.dlq import PREFIX, dead_letter_headers
    from driftnet.contract.events import Lineage

    [letter] = decode(b'[{"event_id": 1}]', Lineage("t", 0, 0)).dead_letters
    names = {
        name.removeprefix(PREFIX) for name, _ in dead_letter_headers(letter, datetime.now(UTC))
    }
    worker = section(page("operations.md"), "## The worker")
    documented = set(re.findall(r"`(?:driftnet\.dlq)?\.([a-z_0-9]+)`", worker))
    assert names <= documented
    assert {"field", "batch_index"} <= documented


def test_detector_table_lists_every_registered_detector() -> None:
    """The detectors page's table names exactly the registered detectors."""
    from driftnet.detectors.families.registry import REGISTRY

    table = (
        page("detectors.md").split("<!-- detectors:start -->")[1].split("<!-- detectors:end -->")[0]
    )
    listed = set(re.findall(r"`([a-z_]+\.[a-z0-9_]+\.v\d+)`", table))
    assert listed == set(REGISTRY)


def test_scenario_table_matches_the_simulator() -> None:
    """Getting started's scenario table lists every scenario with its description."""
    from driftnet.sandbox.simulation import SCENARIOS

    table = (
        page("getting-started.md")
        .split("<!-- scenarios:start -->")[1]
        .split("<!-- scenarios:end -->")[0]
    )
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| (.+) \|$", table, flags=re.MULTILINE))
    assert rows == {name: s.description for name, s in SCENARIOS.items()}


def test_topics_create_sample_lists_every_topic() -> None:
    """Getting started's "On Kafka, by hand" shows what ``driftnet topics create`` prints on a
    fresh broker: one ``created`` line per topic role of the settings, in their order, each as
    the command words it."""
    from driftnet.streams.clients.topics import TopicOutcome
    from driftnet.streams.settings import Settings

    walkthrough = section(page("getting-started.md"), "## On Kafka, by hand")
    shown = [line for line in walkthrough.splitlines() if line.startswith("created  ")]
    expected = [
        TopicOutcome(role=role, spec=spec, status="created").line
        for role, spec in Settings().topics.by_role().items()
    ]
    assert shown == expected


def test_canary_metric_table_matches_the_judge() -> None:
    """The canary judge page's metric table: every judged metric, its group, bad direction,
    whether it is critical and its minimum samples, as the code defines them."""
    from driftnet.detectors.canary.config import DEFAULT_RULES, METRICS, SCORE, score_spec

    table = (
        page("canary-judge.md")
        .split("<!-- canary-metrics:start -->")[1]
        .split("<!-- canary-metrics:end -->")[0]
    )
    rows = re.findall(
        r"^\| `([^`]+)` \| (\w+) \| (\w+) \| [^|]+ \| [^|]+ \| (yes|no) \| (\d+) \|$",
        table,
        flags=re.MULTILINE,
    )
    expected = [
        (spec.name, spec.group, spec.bad, rule.get("critical", False), rule["min_samples"])
        for spec, rule in [(m, DEFAULT_RULES[m.name]) for m in METRICS]
        + [(score_spec("<name>"), DEFAULT_RULES[SCORE])]
    ]
    documented = [(n, g, b, c == "yes", int(m)) for n, g, b, c, m in rows]
    assert documented == expected


def test_every_source_path_the_docs_name_exists() -> None:
    """A module moved to another room cannot leave the README or docs pointing at nothing."""
    rooms = "contract|detectors|harvest|ingest|alerts|storage|streams|sandbox|cli|tests|bench"
    named = {
        (doc.name, path)
        for doc in documents()
        for path in re.findall(rf"`((?:{rooms})/[\w/]*\w(?:\.py)?/?)(?:::\w+)?`", doc.read_text())
    }
    assert len(named) > 20
    missing = sorted(f"{doc}: {path}" for doc, path in named if not (ROOT / path).exists())
    assert not missing, "\n".join(missing)


def test_every_import_in_the_docs_examples_resolves() -> None:
    """The docs' Python examples name modules and objects that exist where they say."""
    import importlib

    blocks = [
        b for doc in documents() for b in re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)
    ]
    imports = [
        i
        for b in blocks
        for i in re.findall(r"^from (driftnet\.[\w.]+) import ([\w, ]+)$", b, re.M)
    ]
    assert len(imports) > 5
    for module, names in imports:
        loaded = importlib.import_module(module)
        for name in names.split(","):
            assert hasattr(loaded, name.strip()), f"{module} has no {name.strip()}"
