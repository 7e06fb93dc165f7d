"""Compaction, retention, deletion on request, labels and exports of the harvest."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from driftnet.cli.main import cli
from driftnet.harvest.exports import ExportTally, export_items
from driftnet.harvest.records import FailureRecord
from driftnet.storage.maintenance import (
    COMPACTED_PREFIX,
    add_label,
    compact,
    delete_where,
    drop_expired,
)
from driftnet.storage.query import Harvest, QueryError
from driftnet.storage.schema import FAILURE_SCHEMA, record_document, row_of
from driftnet.storage.target import Target
from tests.support.harvest_data import as_kind, failure, write_failures

DAY = "date=2026-11-25/service=support-chat"


def asked(event_id: str, question: str | None = None, **overrides: Any) -> FailureRecord:
    """A failure whose input is its own question (exports collapse identical inputs)."""
    text = question if question is not None else f"Question of {event_id}?"
    return failure(event_id, input={"messages": [{"role": "user", "content": text}]}, **overrides)


def count(harvest: Harvest, view: str = "failures", where: str = "true") -> int:
    """Rows of ``view`` matching ``where``."""
    value = harvest.run(f"select count(*) as n from {view} where {where}").to_pylist()[0]["n"]
    return int(value)


def snapshot(harvest: Harvest) -> list[dict[str, Any]]:
    """Every row of the failures view, in a stable order."""
    rows: list[dict[str, Any]] = harvest.run(
        "select * from failures order by record_id"
    ).to_pylist()
    return rows


def files(location: Path) -> list[str]:
    """The failure files of the harvest (relative paths; label files left out)."""
    return [f for f in Target.of(location).list_parquet() if f.startswith("date=")]


# -- compaction -------------------------------------------------------------------------------


def small_files(location: Path) -> list[FailureRecord]:
    """Five small files in one folder (one record written twice) and one in another folder."""
    records = [asked(f"e{i}", offset=i) for i in range(8)]
    write_failures(location, records[0:2], start_offset=0)
    write_failures(location, records[2:4], start_offset=2)
    write_failures(location, records[4:5], start_offset=4)
    write_failures(location, records[3:6], start_offset=5)  # e3 again: a replay
    write_failures(location, records[6:7], start_offset=7)
    other = [asked("b1", service="billing", offset=8)]
    write_failures(location, other, start_offset=8)
    return [*records[:7], *other]


def test_compact_merges_each_folders_small_files_without_duplicates(location: Path) -> None:
    """Compaction leaves one file per folder, each record once, and the same query result."""
    records = small_files(location)
    harvest = Harvest.at(str(location))
    before = snapshot(harvest)
    assert count(harvest, "failures_all") == 10
    result = compact(harvest)
    assert (result.folders, result.files_in, result.files_out) == (1, 5, 1)
    assert (result.rows_in, result.rows_out) == (9, 7)
    assert "2 duplicates removed" in result.summary()
    after_files = files(location)
    assert len(after_files) == 2
    [merged] = [f for f in after_files if f.startswith(DAY)]
    assert merged.rpartition("/")[2].startswith(COMPACTED_PREFIX)
    assert count(harvest, "failures_all") == len(records)
    assert snapshot(harvest) == before


def test_compacted_file_keeps_the_explicit_schema(location: Path) -> None:
    """The merged file has the explicit schema, including columns an input file lacked."""
    write_failures(location, [asked("a", cost_usd=0.3)], start_offset=0)
    write_failures(location, [asked("b")], start_offset=1, drop_columns=["cost_usd"])
    compact(Harvest.at(str(location)))
    [merged] = files(location)
    table = pq.read_table(location / merged)
    assert table.schema.equals(FAILURE_SCHEMA, check_metadata=False)
    costs = dict(
        zip(table.column("event_id").to_pylist(), table.column("cost_usd").to_pylist(), strict=True)
    )
    assert costs == {"a": 0.3, "b": None}


def test_compact_again_is_harmless(location: Path) -> None:
    """A second compaction changes nothing: same files, same rows."""
    small_files(location)
    harvest = Harvest.at(str(location))
    compact(harvest)
    first_files, first_rows = files(location), snapshot(harvest)
    again = compact(harvest)
    assert (again.files_in, again.files_out, again.rows_in) == (0, 0, 0)
    assert files(location) == first_files
    assert snapshot(harvest) == first_rows


def test_compact_removes_duplicates_inside_a_single_file(location: Path) -> None:
    """A lone file holding one record twice is rewritten without the copy."""
    record = asked("x")
    write_failures(location, [record, record, asked("y")])
    harvest = Harvest.at(str(location))
    result = compact(harvest)
    assert (result.rows_in, result.rows_out) == (3, 2)
    assert count(harvest, "failures_all") == 2


def test_reader_sees_exact_count_while_compaction_runs(location: Path) -> None:
    """A query running in a loop while compaction merges and deletes files always sees every
    record exactly once, and never fails."""
    reader_harvest = Harvest.at(str(location))
    compactor = Harvest.at(str(location))
    gate = threading.Lock()  # held by the reader per query, by the writer when adding files
    writer_waiting = threading.Event()  # the reader steps aside (a Lock is not fair)
    stop = threading.Event()
    expected = {"n": 0}
    seen: list[tuple[int, int]] = []
    errors: list[Exception] = []

    def read() -> None:
        while not stop.is_set():
            if writer_waiting.is_set():
                time.sleep(0.001)
                continue
            with gate:
                want = expected["n"]
                try:
                    got = count(reader_harvest)
                except Exception as exc:
                    errors.append(exc)
                    continue
            seen.append((want, got))

    def add_files(offset: int, new: int) -> int:
        """``new`` one-record files, then a replayed copy of the last record."""
        writer_waiting.set()
        with gate:
            for _ in range(new):
                write_failures(location, [asked(f"e{offset}", offset=offset)], start_offset=offset)
                offset += 1
            last = asked(f"e{offset - 1}", offset=offset - 1)
            write_failures(location, [last], start_offset=offset)
            expected["n"] = offset
        writer_waiting.clear()
        return offset

    offset = add_files(0, 3)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for _ in range(8):
            offset = add_files(offset, 4)
            for _ in range(2):  # the second round finds nothing to do
                compact(compactor)
    finally:
        stop.set()
        reader.join(timeout=30)
    wrong = [(want, got) for want, got in seen if want != got]
    kinds = sorted({f"{type(e).__name__}: {str(e).splitlines()[0][:48]}" for e in errors})
    assert not errors, (
        f"{len(errors)} of {len(errors) + len(seen)} reads failed during compaction: {kinds}; "
        f"{len(wrong)} reads saw a wrong count (want, got): {wrong[:5]}"
    )
    assert len(seen) >= 5, "the reader hardly ran"
    assert not wrong, (
        f"{len(wrong)} of {len(seen)} reads saw a wrong count (want, got): {wrong[:5]}"
    )
    assert count(reader_harvest) == offset


# -- retention ----------------------------------------------------------------------------------


def dated(location: Path) -> None:
    """A record on each of 2026-10-25, 2026-10-26 and 2026-11-25, and a label."""
    for i, day in enumerate(("2026-10-25", "2026-10-26", "2026-11-25")):
        write_failures(location, [asked(f"d{i}", timestamp=f"{day}T08:00:00Z")], start_offset=i)
    add_label(Harvest.at(str(location)), "d0", "bad")
    (location / "date=not-a-date").mkdir()


def test_drop_expired_drops_old_date_folders_only(location: Path) -> None:
    """drop_expired deletes date= folders older than the retention, nothing else."""
    dated(location)
    harvest = Harvest.at(str(location))
    assert drop_expired(harvest, 30, today=date(2026, 11, 25)) == 1
    assert sorted(p.name for p in location.iterdir()) == [
        "date=2026-10-26",
        "date=2026-11-25",
        "date=not-a-date",
        "labels",
    ]
    assert sorted(harvest.run("select event_id from failures").column("event_id").to_pylist()) == [
        "d1",
        "d2",
    ]
    assert drop_expired(harvest, 30, today=date(2026, 11, 25)) == 0


def test_compact_with_retention_drops_then_merges(location: Path) -> None:
    """compact(retention_days=...) drops expired date folders first and says so."""
    dated(location)
    write_failures(location, [asked("d3", timestamp="2026-11-25T09:00:00Z")], start_offset=9)
    harvest = Harvest.at(str(location))
    result = compact(harvest, retention_days=1, today=date(2026, 11, 25))
    assert result.partitions_dropped == 2
    assert "dropped 2 date partitions past retention" in result.summary()
    assert [f.split("/")[0] for f in files(location) if f.startswith("date=")] == [
        "date=2026-11-25"
    ]
    assert count(harvest) == 2


# -- deletion on request -------------------------------------------------------------------------


def tenants(location: Path) -> None:
    """t7 rows in a mixed file and a t7-only file (with a replayed copy); others elsewhere."""
    write_failures(
        location,
        [
            asked("a1", attributes={"tenant": "acme"}),
            asked("t1", attributes={"tenant": "t7"}),
            asked("a2", attributes={"tenant": "acme"}),
        ],
        start_offset=0,
    )
    write_failures(
        location,
        [asked("t2", attributes={"tenant": "t7"}), asked("t1", attributes={"tenant": "t7"})],
        start_offset=3,
    )
    write_failures(location, [asked("n1", attributes={})], start_offset=5)
    harvest = Harvest.at(str(location))
    add_label(harvest, "t1", "bad", correction="x")
    add_label(harvest, "a1", "bad", correction="y")
    add_label(harvest, "t2", "good")


def test_delete_where_removes_only_matching_rows_and_their_labels(location: Path) -> None:
    """delete_where rewrites mixed files, removes emptied ones and drops the deleted events'
    labels; nothing else changes."""
    tenants(location)
    harvest = Harvest.at(str(location))
    before = {r["event_id"]: r for r in snapshot(harvest) if r["event_id"] in ("a1", "a2", "n1")}
    result = delete_where(harvest, "attributes.tenant = 't7'")
    assert (result.rows, result.files_rewritten, result.files_removed, result.labels) == (
        3,
        1,
        1,
        2,
    )
    assert "deleted 3 rows" in result.summary()
    assert len(files(location)) == 2
    assert count(harvest, "failures_all", "attributes['tenant'] = 't7'") == 0
    after = {r["event_id"]: r for r in snapshot(harvest)}
    assert after == before
    assert harvest.run("select event_id from labels").column("event_id").to_pylist() == ["a1"]


def test_delete_where_nothing_matching_changes_nothing(location: Path) -> None:
    """A predicate that matches no row rewrites no file."""
    tenants(location)
    harvest = Harvest.at(str(location))
    mtimes = {f: (location / f).stat().st_mtime_ns for f in files(location)}
    result = delete_where(harvest, "attributes.tenant = 'nobody'")
    assert (result.rows, result.files_rewritten, result.files_removed, result.labels) == (
        0,
        0,
        0,
        0,
    )
    assert {f: (location / f).stat().st_mtime_ns for f in files(location)} == mtimes


def test_delete_where_bad_sql_raises_query_error(location: Path) -> None:
    """A predicate DuckDB refuses raises QueryError (one line) and deletes nothing."""
    tenants(location)
    harvest = Harvest.at(str(location))
    for where in ("attributes.tenant = ", "no_such_column = 1"):
        with pytest.raises(QueryError) as caught:
            delete_where(harvest, where)
        assert "\n" not in str(caught.value)
    assert count(harvest, "failures_all") == 6


@pytest.mark.parametrize(
    "where",
    ["date = DATE '2026-11-24'", "label = 'bad' AND attributes.tenant = 't7'"],
    ids=["date", "label"],
)
def test_delete_where_takes_failures_view_columns(location: Path, where: str) -> None:
    """delete_where's predicate is over the failures columns, as documented: the Hive `date`
    and the joined `label` are usable."""
    tenants(location)
    write_failures(location, [asked("old", timestamp="2026-11-24T10:00:00Z")], start_offset=9)
    harvest = Harvest.at(str(location))
    expected = count(harvest, "failures", where)
    assert expected == 1
    result = delete_where(harvest, where)
    assert result.rows >= 1
    assert count(harvest, "failures", where) == 0


def test_cli_harvest_delete(runner: CliRunner, location: Path) -> None:
    """`driftnet harvest delete --where ... --yes` deletes and reports; nothing matching is said."""
    tenants(location)
    result = runner.invoke(
        cli, ["harvest", "delete", "--where", "attributes.tenant = 't7'", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "deleted 3 rows" in result.output
    result = runner.invoke(
        cli, ["harvest", "delete", "--where", "attributes.tenant = 't7'", "--yes"]
    )
    assert result.exit_code == 0, result.output
    assert "no rows match; nothing deleted" in result.output


def test_cli_harvest_compact(runner: CliRunner, location: Path) -> None:
    """`driftnet harvest compact` prints its summary."""
    small_files(location)
    result = runner.invoke(cli, ["harvest", "compact"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("compacted 5 files into 1 in 1 folders (7 rows")


# -- exports (pure) ----------------------------------------------------------------------------


def pair(record: FailureRecord, **label: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(record document, label columns) as the export reads them."""
    columns = {"label": None, "correction": None, "label_note": None}
    columns.update(label)
    return record_document(row_of(record)), columns


def test_eval_item_shape() -> None:
    """An eval line carries id, input, actual output, reasons, scores and metadata."""
    record = asked(
        "e1",
        "Where is my parcel?",
        output={
            "messages": [{"role": "assistant", "content": [{"type": "text", "text": "Lost."}]}]
        },
        scores={"faithfulness": 0.2},
        attributes={"tenant": "acme"},
    )
    tally = ExportTally()
    [item] = export_items([pair(record, label="bad", correction="On its way.")], "eval", tally)
    assert item["id"] == "e1"
    assert item["record_id"] == record.record_id
    assert item["input"] == [{"role": "user", "content": "Where is my parcel?"}]
    assert item["actual"] == "Lost."
    assert item["reasons"] == [r.model_dump() for r in record.reasons]
    assert item["scores"] == {"faithfulness": 0.2}
    metadata = item["metadata"]
    assert metadata["service"] == "support-chat"
    assert metadata["release"] == "gpt-4o+prompt-v7"
    assert metadata["kind"] == "rule"
    assert metadata["attributes"] == {"tenant": "acme"}
    assert (metadata["label"], metadata["correction"]) == ("bad", "On its way.")
    assert tally.written == 1
    assert json.loads(json.dumps(item)) == item


def test_eval_keeps_tool_call_fields_of_input_messages() -> None:
    """Input messages keep name / tool_calls / tool_call_id in an eval line."""
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    record = failure(
        "e1",
        input={
            "messages": [
                {"role": "user", "content": "hi", "name": "bob"},
                {"role": "assistant", "content": None, "tool_calls": calls},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
            ]
        },
    )
    [item] = export_items([pair(record)], "eval", ExportTally())
    assert item["input"] == [
        {"role": "user", "content": "hi", "name": "bob"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
    ]


def test_openai_chat_uses_only_corrections() -> None:
    """A chat line is the input plus the human correction; failures without one are left out
    and the failing output is never an assistant turn."""
    labelled = asked("e1", "Cancel my order")
    unlabelled = asked("e2", "Refund me")
    tally = ExportTally()
    items = list(
        export_items(
            [pair(labelled, label="bad", correction="Done: order cancelled."), pair(unlabelled)],
            "openai-chat",
            tally,
        )
    )
    assert items == [
        {
            "messages": [
                {"role": "user", "content": "Cancel my order"},
                {"role": "assistant", "content": "Done: order cancelled."},
            ]
        }
    ]
    assert "It ships tomorrow." not in json.dumps(items)  # the failing output
    assert (tally.written, tally.without_correction, tally.duplicates) == (1, 1, 0)
    summary = tally.summary("out.jsonl")
    assert summary.startswith("exported 1 rows to out.jsonl; left out ")
    assert "1 failures without a correction" in summary


def test_label_without_correction_is_not_a_training_example() -> None:
    """A label with an empty correction does not make a chat line."""
    tally = ExportTally()
    items = list(
        export_items([pair(asked("e1"), label="bad", correction="")], "openai-chat", tally)
    )
    assert items == []
    assert tally.without_correction == 1


def test_duplicate_inputs_differing_in_case_and_spaces_are_exported_once() -> None:
    """Inputs equal after lowering case and collapsing whitespace are exported once (the first)."""
    rows = [
        pair(asked("e1", "Where is my  order?")),
        pair(asked("e2", "  where IS my\norder? ")),
        pair(asked("e3", "Where is my order now?")),
    ]
    tally = ExportTally()
    items = list(export_items(rows, "eval", tally))
    assert [i["id"] for i in items] == ["e1", "e3"]
    assert (tally.written, tally.duplicates) == (2, 1)
    assert tally.summary("x") == "exported 2 rows to x; left out 1 duplicate inputs"


def test_same_text_from_another_role_is_not_a_duplicate() -> None:
    """The role is part of an input's identity."""
    system = failure("e1", input={"messages": [{"role": "system", "content": "Hi"}]})
    user = failure("e2", input={"messages": [{"role": "user", "content": "Hi"}]})
    items = list(export_items([pair(system), pair(user)], "eval", ExportTally()))
    assert len(items) == 2


# -- exports (CLI) -----------------------------------------------------------------------------


def stamp(delta: timedelta) -> str:
    """An RFC 3339 time ``delta`` before now."""
    return (datetime.now(UTC) - delta).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def export_data(location: Path) -> None:
    """Recent and old failures of two services, two reasons and two kinds."""
    hour, old = stamp(timedelta(hours=1)), stamp(timedelta(days=10))
    write_failures(
        location,
        [
            asked("s1", reason="latency_slo", timestamp=hour, attributes={"tenant": "acme"}),
            asked("s2", reason="refusal", timestamp=hour, attributes={"tenant": "t7"}),
            as_kind(asked("s3", reason="refusal", timestamp=hour), "evidence", "finding-1"),
        ],
        start_offset=0,
    )
    write_failures(
        location,
        [asked("b1", reason="refusal", service="billing", timestamp=hour)],
        start_offset=3,
    )
    write_failures(location, [asked("o1", reason="latency_slo", timestamp=old)], start_offset=4)


def exported(runner: CliRunner, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
    """Lines written by `driftnet export ARGS --output FILE`."""
    out = tmp_path / "export.jsonl"
    out.unlink(missing_ok=True)
    result = runner.invoke(cli, ["export", *args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def ids(items: list[dict[str, Any]]) -> list[str]:
    """The sorted event ids of eval lines."""
    return sorted(str(item["id"]) for item in items)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["b1", "o1", "s1", "s2", "s3"]),
        (("--service", "billing"), ["b1"]),
        (("--service", "billing", "--service", "support-chat"), ["b1", "o1", "s1", "s2", "s3"]),
        (("--reason", "refusal"), ["b1", "s2", "s3"]),
        (("--kind", "evidence"), ["s3"]),
        (("--since", "2d"), ["b1", "s1", "s2", "s3"]),
        (("--until", "2d"), ["o1"]),
        (("--where", "attributes['tenant'] = 't7'"), ["s2"]),
        (("--reason", "latency_slo", "--since", "2d", "--service", "support-chat"), ["s1"]),
    ],
    ids=["all", "service", "services", "reason", "kind", "since", "until", "where", "combined"],
)
def test_cli_export_eval_filters(
    runner: CliRunner, location: Path, tmp_path: Path, args: tuple[str, ...], expected: list[str]
) -> None:
    """`driftnet export --format eval` with filters selects exactly the matching failures."""
    export_data(location)
    assert ids(exported(runner, tmp_path, "--format", "eval", *args)) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--service", "billing"), ["b1"]),
        (("--reason", "refusal", "--kind", "rule"), ["b1", "s2"]),
        (("--since", "2d", "--where", "attributes['tenant'] = 'acme'"), ["b1", "s1", "s3"]),
        (("--reason", "refusal", "--since", "2d", "--service", "support-chat"), ["s2", "s3"]),
    ],
    ids=["service", "reason-kind", "since-where", "reason-since-service"],
)
def test_cli_export_parquet_filters(
    runner: CliRunner, location: Path, tmp_path: Path, args: tuple[str, ...], expected: list[str]
) -> None:
    """`driftnet export --format parquet` applies the same filters (written into the COPY)."""
    export_data(location)
    out = tmp_path / "export.parquet"
    result = runner.invoke(cli, ["export", "--format", "parquet", "--output", str(out), *args])
    assert result.exit_code == 0, result.output
    assert sorted(pq.read_table(out).column("event_id").to_pylist()) == expected
    assert f"exported {len(expected)} rows to {out}" in result.output


def test_cli_export_parquet_needs_output(runner: CliRunner, location: Path) -> None:
    """`driftnet export --format parquet` without --output is a usage error."""
    export_data(location)
    result = runner.invoke(cli, ["export", "--format", "parquet"])
    assert result.exit_code == 2
    assert "--output" in result.output


def test_cli_export_bad_where_exits_2(runner: CliRunner, location: Path, tmp_path: Path) -> None:
    """A --where DuckDB refuses exits 2 with one line."""
    export_data(location)
    result = runner.invoke(
        cli, ["export", "--format", "eval", "--where", "nope ==", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_label_then_export_openai_chat(
    runner: CliRunner, location: Path, tmp_path: Path
) -> None:
    """`driftnet label` with a correction makes that event a chat line with the correction."""
    export_data(location)
    assert exported(runner, tmp_path, "--format", "openai-chat") == []
    result = runner.invoke(
        cli, ["label", "s2", "--label", "bad", "--correction", "Happy to help: here is how."]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "labelled s2 'bad'"
    result = runner.invoke(cli, ["label", "s1", "--label", "good"])
    assert result.exit_code == 0, result.output
    lines = exported(runner, tmp_path, "--format", "openai-chat")
    assert lines == [
        {
            "messages": [
                {"role": "user", "content": "Question of s2?"},
                {"role": "assistant", "content": "Happy to help: here is how."},
            ]
        }
    ]
    only_bad = exported(runner, tmp_path, "--format", "eval", "--label", "bad")
    assert ids(only_bad) == ["s2"]
    assert only_bad[0]["metadata"]["correction"] == "Happy to help: here is how."


def test_cli_label_of_unknown_event_says_so(runner: CliRunner, location: Path) -> None:
    """Labelling an event not harvested yet works and says so."""
    export_data(location)
    result = runner.invoke(cli, ["label", "later", "--label", "bad"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "labelled later 'bad' (not harvested yet)"
