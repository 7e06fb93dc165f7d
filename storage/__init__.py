"""The harvest at rest: Parquet files (schema, buffers, targets) and the DuckDB views and SQL
users run. The only room that imports duckdb or pyarrow.

Start at :mod:`driftnet.storage.schema`, then :mod:`driftnet.storage.query`.
"""
