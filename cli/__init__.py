"""The ``driftnet`` command line: click commands, one module per command group, shared
parameter parsers in :mod:`driftnet.cli.params`. No I/O of its own: a command calls the room
that does the work, imported inside the command so that ``driftnet --help`` or ``driftnet
check`` does not load Kafka clients, DuckDB or faust.

Start at :mod:`driftnet.cli.main` (the group and the top-level commands).
"""
