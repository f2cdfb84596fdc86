"""Faces for the speed benchmarks as the preprocess stage writes them: random ones (a network does
the same work on them as on real faces: its FLOPs do not depend on the pixels) and the train and
val split files of any faces."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def random_faces(shape: tuple[int, int, int], n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images of ``shape`` (S, S, C) and label rows [age 1-99, gender, race] (int16)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    labels = np.stack([rng.integers(1, 100, n), rng.integers(0, 2, n), rng.integers(0, 5, n)],
                      1).astype(np.int16)
    return x, labels


def write_splits(folder: Path, x: np.ndarray, labels: np.ndarray) -> Path:
    """Images ``x`` and their label rows as the preprocess stage writes a train and a val split
    (the first 10 %, at least one face, are val) into ``folder``; returns ``folder``."""
    n_val = max(1, len(x) // 10)
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", slice(n_val, None)), ("val", slice(0, n_val))):
        np.save(folder / f"{split}_images.npy", x[rows])
        np.save(folder / f"{split}_labels.npy", labels[rows])
    return folder


def write_random_splits(folder: Path, shape: tuple[int, int, int], n: int, seed: int = 0) -> Path:
    """:func:`random_faces` written by :func:`write_splits`."""
    return write_splits(folder, *random_faces(shape, n, seed))
