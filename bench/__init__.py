"""Benchmarks: run with `make bench`; each prints its figures (the README's table quotes them)."""
