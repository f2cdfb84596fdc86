"""The labelled image sets the face benchmarks score, and a labelled set of yours read as one.

Not a benchmark itself (``peers.py`` and ``fusion.py`` import it). A set yields its images a chunk
at a time (:data:`CHUNK`), so memory does not grow with the set.
"""
from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

CHUNK = 256  # images held in memory at once per set


@dataclass
class BenchSet:
    """Images with labels: ``chunks()`` yields (images: arrays or paths, true face places or
    None) in label order; ``modes`` are the paths run; ``base``: the set whose chip-path scores
    this one's are compared with."""
    name: str
    labels: pd.DataFrame
    modes: tuple[str, ...]
    chunks: Callable[[], Iterable[tuple[list, list | None]]]
    base: str | None = None
    notes: list[str] = field(default_factory=list)
    utkface: bool = True  # UTKFace's faces (a peer trained on them is marked)


def chunked(items: list, size: int = CHUNK):
    """``(start, items[start:start + size])`` for each chunk of ``items`` in order."""
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def unpack(path: Path, into: Path) -> Path:
    """A labelled set's folder: ``path`` itself, or a tar archive unpacked under ``into``."""
    if path.is_dir():
        return path
    if path.name.endswith((".tar.gz", ".tgz", ".tar")) and path.is_file():
        target = into / path.name
        with tarfile.open(path) as tar:
            tar.extractall(target, filter="data")  # no links out, no absolute paths
        return target
    raise SystemExit(f"{path}: not a folder nor a .tar.gz / .tgz / .tar archive of a labelled set")


def external_set(path: Path, into: Path, limit: int | None, seed: int) -> BenchSet:
    """A labelled set of yours in the ``external`` format (a folder with labels.csv, or an archive
    unpacked under ``into``), read by :mod:`agegender.data.labelled` (bad rows skipped with their
    reason, counted in its notes); ``limit``: a subset of that many, drawn from ``seed``. Detect
    path only: these are photos, not chips."""
    from agegender.data import labelled
    from agegender.data.skips import count_reasons

    rows, skipped = labelled.scan(unpack(path, into))
    reasons = ", ".join(f"{why} {n}" for why, n in count_reasons(skipped).items())
    if not rows:
        raise SystemExit(f"{path}: no usable labelled image ({len(skipped)} skipped: "
                         f"{reasons or 'no labels.csv found'})")
    if limit and limit < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
        rows = [rows[i] for i in keep]
    labels = pd.DataFrame({"file": [r.key for r in rows], "age": [r.labels.age for r in rows],
                           "gender": [r.labels.gender for r in rows]})
    paths = [r.path for r in rows]
    notes = [f"{len(skipped)} skipped: {reasons}"] if skipped else []
    return BenchSet(path.name, labels, ("detect",), lambda: ((p, None) for _, p in chunked(paths)),
                    notes=notes, utkface=False)
