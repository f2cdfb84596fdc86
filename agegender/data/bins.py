"""Age bins: the one place that turns ages into bin indices and bin probabilities back into ages.

A scheme is a list of inclusive lower edges; bin ``i`` holds ages ``edges[i] <= age < edges[i+1]``
and the last bin is open-ended. Ages below the first edge fall into bin 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_AGE = 116  # oldest age in UTKFace; closes the open-ended last bin for decoding


@dataclass(frozen=True)
class BinScheme:
    name: str
    edges: tuple[int, ...]  # inclusive lower edge of each bin, increasing

    @property
    def n_bins(self) -> int:
        return len(self.edges)

    def labels(self) -> list[str]:
        """Human-readable names: '0-4', ..., '95+'."""
        out = []
        for i, lo in enumerate(self.edges):
            out.append(f"{lo}+" if i == self.n_bins - 1 else f"{lo}-{self.edges[i + 1] - 1}")
        return out

    def encode(self, ages) -> np.ndarray:
        """Ages in years, shape (N,) -> bin indices int64 (N,)."""
        idx = np.searchsorted(np.asarray(self.edges), np.asarray(ages), side="right") - 1
        return np.clip(idx, 0, self.n_bins - 1).astype(np.int64)

    def label_of(self, ages) -> list[str]:
        """Ages in years (N,) -> the name of each one's bin, e.g. '25-29' (list of N strings)."""
        names = self.labels()
        return [names[i] for i in self.encode(np.atleast_1d(ages))]

    def centres(self) -> np.ndarray:
        """Representative age of each bin (mid-point; last bin closed at MAX_AGE), shape (K,)."""
        upper = np.append(np.asarray(self.edges[1:]) - 1, max(MAX_AGE, self.edges[-1]))
        return (np.asarray(self.edges) + upper) / 2.0

    def decode(self, probs) -> np.ndarray:
        """Bin scores (N, K), not necessarily normalised (e.g. sigmoid outputs) -> expected age (N,)."""
        p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, None)
        total = p.sum(axis=1, keepdims=True)
        p = np.where(total > 0, p / np.where(total > 0, total, 1), 1.0 / self.n_bins)
        return p @ self.centres()


# Seed 004: 20 five-year groups, group 19 = 95+. The common scale every model is scored on.
FIVE_YEAR = BinScheme("five_year", tuple(range(0, 100, 5)))
# Seed 000: 12 custom bins chosen so that faces within a bin look alike.
CUSTOM12 = BinScheme("custom12", (1, 4, 11, 18, 23, 27, 33, 38, 46, 54, 63, 74))
# Seed 003: edges 1,6,11,16,19,22,31,45,61,81,101 give 10 ranges; ages >= 101 join the last one
# (and age 0, absent from UTKFace, the first), so every face has a bin.
RANGES10 = BinScheme("ranges10", (1, 6, 11, 16, 19, 22, 31, 45, 61, 81))

# The life stages every report reads errors by (breakdown, model card, benchmarks): 0-2, 3-12, 13-19,
# 20-39, 40-59, 60+. A reporting scale only, not a model output.
LIFE_STAGES = BinScheme("life_stages", (0, 3, 13, 20, 40, 60))

SCHEMES = {s.name: s for s in (FIVE_YEAR, CUSTOM12, RANGES10)}


def get_scheme(name: str) -> BinScheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown bin scheme {name!r}; known: {sorted(SCHEMES)}") from None
