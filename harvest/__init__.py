"""Pure failure rules, failure records, redaction, triage and exports: which calls failed, why,
and where they came from.

Start at :mod:`driftnet.harvest.triage` (one decoded event in, failure records out).
"""
