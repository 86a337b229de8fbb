"""Benchmarks: ``python -m bench <suite> [--quick] [--device cpu|cuda] --json FILE``."""
