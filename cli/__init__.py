"""The ``driftnet`` command line: click commands, one module per command group, shared
parameter parsers in :mod:`driftnet.cli.params`. No I/O of its own beyond the files a command
reads and writes (:mod:`driftnet.cli.files`: never over an existing file without ``--force``):
a command calls the room that does the work, imported inside the command so that ``driftnet
--help`` or ``driftnet check`` does not load Kafka clients, DuckDB or faust.

Start at :mod:`driftnet.cli.main` (the group and the top-level commands).
"""
