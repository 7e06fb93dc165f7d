"""The harvest on an object store: moto's S3 server on 127.0.0.1 stands in for S3. The sink
writes straight to final keys, queries read through pyarrow's S3 filesystem, compaction and
deletion work there too, and credentials in the location never reach the output."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from driftnet.cli.main import cli
from driftnet.storage.maintenance import compact, delete_where
from driftnet.storage.query import Harvest
from driftnet.storage.settings import HarvestSettings
from driftnet.streams.clients.topics import create_topics
from tests.integration.test_sink import make_records, produce_records, wait_for_rows
from tests.support.kafka_helpers import WorkerProcess, stream_settings, unique_topics


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """``host:port`` of a moto S3 server on 127.0.0.1 (any key and secret are accepted)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()


def s3_location(endpoint: str) -> str:
    bucket = f"driftnet-{uuid.uuid4().hex[:8]}"
    return (
        f"s3://AKIATESTKEY:planted-secret-7f3a@{bucket}/harvest?endpoint_override={endpoint}"
        "&scheme=http&region=us-east-1&allow_bucket_creation=true"
    )


@pytest.mark.integration
def test_sink_writes_to_s3_and_queries_compaction_and_deletion_work_there(
    kafka_bootstrap: str, s3_endpoint: str, tmp_path: Path
) -> None:
    """300 records streamed through ``driftnet sink`` into S3 are all queryable; compaction
    leaves one file per folder and the same rows; a tenant's rows can be deleted."""
    settings = stream_settings(kafka_bootstrap, unique_topics("s3"), tmp_path / "data")
    harvest_settings = settings.harvest.model_copy(update={"location": s3_location(s3_endpoint)})
    settings = settings.model_copy(update={"harvest": harvest_settings})
    create_topics(settings.kafka, settings.topics.by_role())
    records = make_records(300)
    produce_records(kafka_bootstrap, settings.topics.failures.name, records)
    with WorkerProcess(settings, tmp_path / "sink.log", command="sink") as sink:
        ids = wait_for_rows(settings, len(records), timeout_s=60)
        assert sink.stop() == 0, sink.log
    assert "planted-secret-7f3a" not in sink.log
    assert sorted(ids) == sorted(r.record_id for r in records)

    harvest = Harvest.at(settings.harvest.location)
    assert not harvest.target.is_local
    files_before = harvest.failure_files()
    result = compact(harvest)
    files_after = harvest.failure_files()
    assert len(files_after) == len({f.rpartition("/")[0] for f in files_before})
    assert result.rows_out == len(records)
    assert sorted(harvest.run("SELECT record_id FROM failures").column(0).to_pylist()) == sorted(
        ids
    )

    deleted = delete_where(harvest, "attributes.tenant = 't7'")
    tenant_7 = [r for r in records if r.event.attributes["tenant"] == "t7"]
    assert deleted.rows == len(tenant_7) > 0
    left = harvest.run("SELECT count(*) AS n, count(*) FILTER (attributes.tenant = 't7') AS t7 "
                       "FROM failures").to_pylist()[0]  # fmt: skip
    assert left == {"n": len(records) - len(tenant_7), "t7": 0}


def test_query_cli_reads_s3_and_masks_its_credentials(s3_endpoint: str) -> None:
    """``driftnet query`` answers from an S3 location; ``driftnet config`` and a missing-dataset
    message show the location with its credentials masked."""
    from tests.support.harvest_data import failure, write_failures

    location = s3_location(s3_endpoint)
    runner = CliRunner()
    env = {"DRIFTNET_HARVEST__LOCATION": location}
    missing = runner.invoke(cli, ["query", "select 1"], env=env)
    assert missing.exit_code == 1
    assert "no harvest at s3://***@" in missing.output
    assert "planted-secret-7f3a" not in missing.output

    harvest = Harvest.at(location)
    write_failures(location, [failure("evt-a"), failure("evt-b", reason="refusal")])
    assert harvest.target.exists()
    done = runner.invoke(
        cli, ["query", "select event_id from failures order by 1", "--format", "csv"], env=env
    )
    assert done.exit_code == 0, done.output
    config = runner.invoke(cli, ["config"], env=env)
    assert config.exit_code == 0
    assert "planted-secret-7f3a" not in config.output
    assert HarvestSettings(location=location).location == location  # the setting itself is kept
