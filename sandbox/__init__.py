"""Try driftnet with nothing installed: the embedded broker, the traffic simulator and the demo.

Start at :mod:`driftnet.sandbox.demo` (``driftnet demo``).
"""
