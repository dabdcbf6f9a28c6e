"""Benchmarks that are run by `make bench`, not by the test suite."""
