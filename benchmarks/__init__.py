"""Scripts that measure (speed/, quality/) and the helpers they share (common/); run each from the
repository root as a module, e.g. ``python -m benchmarks.speed.pipeline_bench speed`` (README.md)."""
