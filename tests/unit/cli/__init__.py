"""Unit tests of driftnet.cli."""
