"""Unit tests of driftnet.streams."""
