"""Stream processing and the shared home of the event contract and settings.

Importing this package is cheap: it pulls in no Kafka client. ``streams.events``,
``streams.decode`` and ``streams.settings`` are pure and safe for every room to import.
"""
