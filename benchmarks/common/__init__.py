"""Helpers the benchmark scripts share; none is run as a benchmark (peer_worker.py runs in the
peer's own venv, by its path)."""
