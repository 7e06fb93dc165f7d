"""Unit tests of driftnet.alerts."""
