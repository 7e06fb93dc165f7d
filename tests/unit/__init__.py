"""Tests of one room each, with no broker: tests/unit/<room>/ mirrors driftnet.<room>."""
