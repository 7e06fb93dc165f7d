"""Unit tests of driftnet.ingest."""
