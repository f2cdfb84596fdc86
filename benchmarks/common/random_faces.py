"""Random faces and label rows for the speed benchmarks: the same shapes and dtypes as the
preprocess stage's arrays, so a network does the work it does on real faces (its FLOPs do not
depend on the pixels)."""
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


def write_random_splits(folder: Path, shape: tuple[int, int, int], n: int, seed: int = 0) -> Path:
    """:func:`random_faces` as the preprocess stage writes a train and a val split (90 % / 10 %,
    at least one val face) into ``folder``; returns ``folder``."""
    x, labels = random_faces(shape, n, seed)
    n_val = max(1, n // 10)
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", slice(n_val, None)), ("val", slice(0, n_val))):
        np.save(folder / f"{split}_images.npy", x[rows])
        np.save(folder / f"{split}_labels.npy", labels[rows])
    return folder
