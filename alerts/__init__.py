"""Alerts: the alert model, lifecycle (dedup, grouping, resolve), silences and the pipeline
that feeds :mod:`driftnet.alerts.notify`. Pure apart from ``notify/``.

Start at :mod:`driftnet.alerts.lifecycle`, then :mod:`driftnet.alerts.pipeline`.
"""
