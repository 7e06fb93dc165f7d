"""The faust runtime: app assembly, stages, Kafka config, topics, publisher and ops (health,
metrics, status). The only rooms that import faust or aiokafka are this one, sandbox and cli.

Start at :mod:`driftnet.streams.worker` (the app and its stages).
"""
