"""Pure failure rules and failure records: which calls failed, why, and where they came from."""
