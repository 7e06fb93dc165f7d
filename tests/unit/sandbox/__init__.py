"""Unit tests of driftnet.sandbox."""
