"""The agents that read what producers send: events (triage) and OTLP spans, and the guard that turns
an unreadable record batch into a dead letter.

Start at :mod:`driftnet.streams.intake.triage`.
"""
