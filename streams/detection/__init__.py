"""Windowed detection on Kafka: the map stage in the triage agent, the merge stage on the aggregates
topic, the detectors and canary judges run as windows close, and the records and signals they give.

Start at :mod:`driftnet.streams.detection.stage`.
"""
