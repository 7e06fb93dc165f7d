"""Unit tests of driftnet.harvest."""
