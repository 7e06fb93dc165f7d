"""Pure, synchronous windowed detection: windows, partial aggregates, detectors, findings.

Importing this package loads nothing heavy; scipy is imported on a detector's first test and
evidently only by :mod:`detectors.drift_report`. Start at :mod:`detectors.cohort` (every
detector of one cohort) and :mod:`detectors.merge` (the two aggregation stages).
"""
