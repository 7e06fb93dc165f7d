"""Running it: start-up checks, GC tuning, counts and the periodic report, ``/health`` and ``/metrics``.

Start at :mod:`driftnet.streams.ops.status` (what the endpoint reads from the running parts).
"""
