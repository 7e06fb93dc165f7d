"""Helpers the tests share: fakes of the outside world, building blocks of fixtures, data."""
