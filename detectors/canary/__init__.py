"""The canary judge: a canary release against its baseline in the same windows, with
always-valid sequential tests, and the verdicts it gives.

Start at :mod:`driftnet.detectors.canary.judge`.
"""
