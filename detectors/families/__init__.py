"""The detector families (volume, latency, cost, quality, drift) judging one cohort's windows
against its own trailing reference.

Start at :mod:`driftnet.detectors.families.base`, then :mod:`driftnet.detectors.families.registry`.
"""
