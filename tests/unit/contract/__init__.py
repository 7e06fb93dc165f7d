"""Unit tests of driftnet.contract."""
