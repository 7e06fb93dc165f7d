"""Unit tests of driftnet.detectors."""
