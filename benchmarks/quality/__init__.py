"""How well, on faces unlike the test chips: one benchmark script per module, each run as
``python -m benchmarks.quality.NAME``."""
