"""OTLP traces mapped to v1 events (OpenTelemetry GenAI, OpenInference, OpenLLMetry). Pure.

Start at :mod:`driftnet.ingest.spans_to_events` (a batch of spans in, events out), then
:mod:`driftnet.ingest.mapping` (which convention a span follows, and its field table).
"""
