"""The train/val/test split: deterministic, stratified by five-year age group x gender.

Its own module so that k-fold (which re-splits the labels table) imports no raw-data code.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from agegender.data.bins import FIVE_YEAR

SPLITS = ("train", "val", "test")


def stratified_split(df: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int) -> pd.Series:
    """Assign 'train'/'val'/'test' to each row, stratified by five-year age group x gender.

    Rows are shuffled within each stratum (seeded), strata are laid end to end, and every
    1/fraction-th row of that sequence goes to test (then to val among the rest): each split gets
    its share of every stratum to within one row, and exactly round(N * fraction) rows overall,
    even when strata are smaller than 1/fraction. Deterministic for a given seed and set of rows,
    whatever order they arrive in. Returns a Series aligned with ``df.index``.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions: val={val_fraction}, test={test_fraction}")
    rng = np.random.default_rng(seed)
    by_file = df.sort_values("file", kind="stable")
    strata = FIVE_YEAR.encode(by_file["age"].to_numpy()) * 2 + by_file["gender"].to_numpy()
    sequence = []
    for stratum in np.unique(strata):
        members = by_file.index[strata == stratum].to_numpy()
        sequence.extend(members[rng.permutation(len(members))])
    split = pd.Series("train", index=df.index, dtype=object)
    rest = []
    for i, row in enumerate(sequence):
        if _takes(i, test_fraction):
            split[row] = "test"
        else:
            rest.append(row)
    val_share = val_fraction / (1 - test_fraction)
    for j, row in enumerate(rest):
        if _takes(j, val_share):
            split[row] = "val"
    return split


def _takes(i: int, fraction: float) -> bool:
    """True for evenly spaced positions: round(n * fraction) of the first n, for every n."""
    return int(np.floor((i + 1) * fraction + 0.5)) > int(np.floor(i * fraction + 0.5))
