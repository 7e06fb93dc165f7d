"""The ``driftnet`` command line: click commands, one module per command group.

Start at :mod:`driftnet.cli.main` (the group and every top-level command).
"""
