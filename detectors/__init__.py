"""Pure, synchronous detectors and the canary judge (windowed detectors land in a later issue)."""
