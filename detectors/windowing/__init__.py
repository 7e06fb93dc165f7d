"""Event-time windows and their partial aggregates: observations in, mergeable partials out.

Start at :mod:`driftnet.detectors.windowing.partials` and
:mod:`driftnet.detectors.windowing.merge` (the two aggregation stages).
"""
