"""The faust runtime: the worker's app and its stages on Kafka. ``worker.py`` runs it,
``app.py`` assembles it, and every stage attaches itself the same way (``stage.py``):
``intake/`` (events and OTLP spans in), ``detection/`` (windows, detectors, canary judges),
``alerting/``, ``sink/`` (the harvest into Parquet); ``ops/`` (health, metrics, reports);
``clients/`` (Kafka clients for services and commands: publisher, topics, DLQ, verdicts).

Start at :mod:`driftnet.streams.app`.
"""
