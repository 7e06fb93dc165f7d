"""Pure, synchronous windowed detection: windows, partials, detector families, the canary judge.
Time is passed in; nothing here does I/O or imports anything else of driftnet's.

Start at :mod:`driftnet.detectors.cohort` (every detector of one cohort). Importing this package
loads nothing heavy; scipy is imported on a detector's first test, evidently only by
:mod:`driftnet.detectors.families.drift_report`.
"""
