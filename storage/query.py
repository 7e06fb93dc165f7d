"""DuckDB over the harvest: the ``failures`` view every query and export reads.

Views on a connection from :meth:`Harvest.connect`:

``failures_all``
    every row of every readable harvest file, physical duplicates included (a replay can
    write a record twice until ``driftnet harvest compact`` runs);
``labels``
    the latest label of each event (``driftnet label``: latest wins);
``failures``
    each ``record_id`` once, with its event's label joined in (``label``, ``correction``,
    ``label_note``, ``labelled_at``): what users query. For a local dataset the copies to
    leave out are found first over narrow columns (``failures_repeated``: file and row of
    every copy of a record but its first), so filters on ``failures`` reach the file scan.

Local datasets are read by DuckDB directly (Hive partitions ``date=`` and ``service=``
become columns and prune files; files are unioned by column name, so files written before a
column existed read it as NULL). Object-store datasets are scanned through pyarrow's
filesystem (DuckDB's own S3 support needs an extension download, which driftnet never does).

A file that is not readable Parquet (a copy cut short, junk) is skipped with a warning naming
it. A file deleted while a query runs (compaction replaced it) makes the query run again on
the new file list, so a query never misses rows nor, through ``record_id``, counts one twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from driftnet.storage.schema import FAILURE_SCHEMA
from driftnet.storage.target import Target, first_line

log = logging.getLogger("driftnet.query")

LABELS_DIR: Final = "labels"
LABEL_SCHEMA: Final = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("correction", pa.string()),
        pa.field("note", pa.string()),
        pa.field("labelled_by", pa.string()),
        pa.field("labelled_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
HIVE_TYPES: Final = "{'date': 'DATE', 'service': 'VARCHAR'}"
RETRIES: Final = 5


class QueryError(Exception):
    """A query cannot run; ``str()`` is one line (DuckDB's own message for bad SQL)."""


class MissingDataset(QueryError):
    """Nothing has been harvested at the location yet."""


class _ListingChanged(Exception):
    """A listed file was gone when opened: compaction replaced it; list again."""


@dataclass
class Harvest:
    """A harvest dataset at ``target`` (see :class:`driftnet.storage.target.Target`)."""

    target: Target
    skipped: list[str] = field(default_factory=list)
    """Files left out of the last listing because they are not readable harvest files."""

    @classmethod
    def at(cls, location: str) -> Harvest:
        return cls(Target.of(location))

    def require(self) -> None:
        """:class:`MissingDataset` when the location holds no harvest at all."""
        if not self.target.exists():
            raise MissingDataset(
                f"no harvest at {self.target.uri}: nothing harvested yet (run `driftnet worker` "
                "with the sink on, or `driftnet sink`), or set harvest.location"
            )

    # -- files ------------------------------------------------------------------------------

    def failure_files(self) -> list[str]:
        """Readable failure files (relative paths); unreadable ones are skipped, with a warning.
        Raises ``_ListingChanged`` when a listed file vanished before it could be checked."""
        self.skipped = []
        files = []
        for relative in self.target.list_parquet():
            if not relative.startswith("date="):
                continue
            problem = self._problem(relative, "record_id")
            if problem is None:
                files.append(relative)
            else:
                self.skipped.append(relative)
                log.warning("skipping %s: %s", self.target.path(relative), problem)
        return files

    def label_files(self) -> list[str]:
        return [
            f for f in self.target.list_parquet(LABELS_DIR) if self._problem(f, "label") is None
        ]

    def _problem(self, relative: str, required: str) -> str | None:
        try:
            with self.target.open_input(relative) as handle:
                schema = pq.read_schema(handle)
        except FileNotFoundError:
            raise _ListingChanged(relative) from None
        except (pa.ArrowException, OSError) as exc:
            return f"not a readable Parquet file ({first_line(exc)})"
        if required not in schema.names:
            return f"not a driftnet harvest file (no {required} column)"
        return None

    # -- DuckDB -----------------------------------------------------------------------------

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the views above over the current files."""
        self.require()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        # Every view and query binds the same files: read each footer once per connection.
        con.execute("SET parquet_metadata_cache = true")
        self._create_views(con, self.failure_files(), self.label_files())
        return con

    def _create_views(
        self, con: duckdb.DuckDBPyConnection, files: list[str], labels: list[str]
    ) -> None:
        located = bool(files) and self.target.is_local
        source = self._failures_source(con, files, located)
        con.execute(f"CREATE OR REPLACE VIEW {'failures_located' if located else 'failures_all'} "
                    f"AS {source}")  # fmt: skip
        con.execute(f"CREATE OR REPLACE VIEW labels_all AS {self._labels_source(con, labels)}")
        con.execute(
            """
            CREATE OR REPLACE VIEW labels AS
            SELECT * FROM labels_all
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY labelled_at DESC) = 1
            """
        )
        first = "row_number() OVER (PARTITION BY record_id ORDER BY detected_at, lineage.offset"
        if located:
            # The rows to leave out (every copy of a record_id but its first) are found over
            # two narrow columns and are few (replays, until compaction), so a query's filters
            # reach the scan of the wide columns (pruning files and row groups) instead of
            # waiting above a window over every column of every row: 13.7 s -> 1.4 s to show
            # one record of 1M (bench/query_scale.py).
            con.execute(
                f"""
                CREATE OR REPLACE VIEW failures_repeated AS
                SELECT filename, file_row_number FROM failures_located
                WHERE record_id IN (
                    SELECT record_id FROM failures_located GROUP BY record_id HAVING count(*) > 1
                )
                QUALIFY {first}, filename, file_row_number) > 1
                """
            )
            con.execute(
                """
                CREATE OR REPLACE VIEW failures_all AS
                SELECT * EXCLUDE (filename, file_row_number) FROM failures_located
                """
            )
            deduplicated = """
                SELECT * EXCLUDE (filename, file_row_number) FROM failures_located AS a
                ANTI JOIN failures_repeated AS r
                ON a.filename = r.filename AND a.file_row_number = r.file_row_number
            """
        else:
            deduplicated = f"SELECT * FROM failures_all QUALIFY {first}) = 1"
        con.execute(
            f"""
            CREATE OR REPLACE VIEW failures AS
            SELECT f.*, l.label, l.correction, l.note AS label_note, l.labelled_at
            FROM ({deduplicated}) AS f
            LEFT JOIN labels AS l ON l.event_id = f.event_id
            """
        )

    def _failures_source(
        self, con: duckdb.DuckDBPyConnection, files: list[str], located: bool
    ) -> str:
        hive = f"hive_partitioning = true, hive_types = {HIVE_TYPES}"
        if located:
            hive += ", filename = true, file_row_number = true"
        # Remote files have no partition columns: the date is the event's, the service is a
        # column of every file anyway.
        derived = "CAST(NULL AS DATE)" if not files else "CAST(timestamp AS DATE)"
        return self._source(con, "failures", files, FAILURE_SCHEMA, hive, f", {derived} AS date")

    def _labels_source(self, con: duckdb.DuckDBPyConnection, files: list[str]) -> str:
        return self._source(con, "labels", files, LABEL_SCHEMA, "", "")

    def _source(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        files: list[str],
        schema: pa.Schema,
        local_options: str,
        remote_columns: str,
    ) -> str:
        """A SELECT over ``files``: DuckDB's reader for local files, else a pyarrow dataset
        (an empty table of ``schema`` when there are no files)."""
        if files and self.target.is_local:
            paths = ", ".join(_quote(self.target.local_path(f)) for f in files)
            options = ", ".join(o for o in ("union_by_name = true", local_options) if o)
            return f"SELECT * FROM read_parquet([{paths}], {options})"
        if files:
            source: Any = pads.dataset(
                [self.target.path(f) for f in files],
                schema=schema,
                format="parquet",
                filesystem=self.target.filesystem,
            )
        else:
            source = schema.empty_table()
        con.register(f"_{name}_source", source)
        return f"SELECT *{remote_columns} FROM _{name}_source"

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self.connect()
        try:
            yield con
        finally:
            con.close()

    def run(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        """Run ``sql`` and return its result as an Arrow table (retried when compaction
        swaps files underneath it)."""

        def fetch(con: duckdb.DuckDBPyConnection) -> pa.Table:
            relation = con.sql(sql, params=params or None)
            return relation.to_arrow_table() if relation is not None else pa.table({})

        table: pa.Table = self._retrying(fetch)
        return table

    def head(
        self, sql: str, params: list[Any] | None = None, max_rows: int = 100
    ) -> tuple[pa.Table, bool]:
        """``sql``'s first ``max_rows`` rows (0: all) as an Arrow table, and whether it has
        more; a statement that returns no rows gives a table of no columns."""

        def fetch(con: duckdb.DuckDBPyConnection) -> tuple[pa.Table, bool]:
            relation = con.sql(sql, params=params or None)
            if relation is None:
                return pa.table({}), False
            if not max_rows:
                return relation.to_arrow_table(), False
            table = relation.limit(max_rows + 1).to_arrow_table()
            return table.slice(0, max_rows), table.num_rows > max_rows

        result: tuple[pa.Table, bool] = self._retrying(fetch)
        return result

    def write_parquet(self, sql: str, params: list[Any], destination: str) -> int:
        """Write ``sql``'s result (``?`` parameters bound) to a zstd Parquet file; returns the
        number of rows written."""

        def write(con: duckdb.DuckDBPyConnection) -> int:
            relation = con.sql(sql, params=params or None)
            relation.write_parquet(destination, compression="zstd")
            return int(pq.read_metadata(destination).num_rows)

        rows: int = self._retrying(write)
        return rows

    def copy(self, sql: str, destination: str, file_format: str) -> None:
        """``COPY (sql) TO destination`` in ``csv``, ``json`` (lines) or ``parquet``."""
        options = {
            "csv": "FORMAT csv, HEADER true",
            "json": "FORMAT json",
            "parquet": "FORMAT parquet, COMPRESSION zstd",
        }[file_format]
        self._retrying(
            lambda con: con.execute(f"COPY ({sql}) TO {_quote(destination)} ({options})")
        )

    def _retrying(self, action: Any) -> Any:
        for attempt in range(RETRIES):
            last = attempt == RETRIES - 1
            try:
                with self.session() as con:
                    return action(con)
            except _ListingChanged as exc:
                if last:
                    raise QueryError(f"the harvest kept changing while listing ({exc})") from None
            except duckdb.IOException as exc:
                if last or not _vanished(exc):
                    raise QueryError(first_line(exc)) from None
            except duckdb.Error as exc:
                raise QueryError(first_line(exc)) from None
            log.debug("files changed under the query (compaction); running it again")
            time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")


def _vanished(exc: Exception) -> bool:
    """Whether DuckDB failed because a listed file no longer exists."""
    text = str(exc)
    return any(
        marker in text for marker in ("No such file", "No files found", "not found", "Cannot open")
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
