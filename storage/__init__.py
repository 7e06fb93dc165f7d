"""Parquet sink and DuckDB query layer (land with the harvest issue)."""
