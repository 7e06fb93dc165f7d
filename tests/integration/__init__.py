"""Tests against a real Kafka-protocol broker (the conftest picks it): the worker, sink, CLI and demo end to end."""
