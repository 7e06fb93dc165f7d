"""Checks of the repository as a whole: lint, layering, docs, compose, benches."""
