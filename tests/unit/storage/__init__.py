"""Unit tests of driftnet.storage."""
