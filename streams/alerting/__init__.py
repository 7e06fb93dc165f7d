"""The alerting stage in the worker that owns the signals partition: signals in, notifications out.

Start at :mod:`driftnet.streams.alerting.stage`.
"""
