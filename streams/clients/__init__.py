"""Kafka clients outside the worker's app: client options, topic creation, the publisher services
embed, and the readers and writers of the dead-letter, silences and verdicts topics the commands use.

Start at :mod:`driftnet.streams.clients.publisher`.
"""
