"""The harvest sink: failure records off Kafka into Parquet files, alone or inside the worker.

Start at :mod:`driftnet.streams.sink.parquet`.
"""
