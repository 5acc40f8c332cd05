"""Benchmarks, run from the project root as modules: python -m benchmarks.NAME (see each docstring)."""
