"""How fast: one benchmark script per module, each run as ``python -m benchmarks.speed.NAME``."""
