"""Reading the per-epoch series DVCLive writes: one place for its file layout."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

SPLITS = (("train", "train"), ("val", "eval"))  # (our name, DVCLive's folder)


def read_live_metric(live_dir: str | Path, name: str) -> dict[str, pd.DataFrame]:
    """DVCLive per-epoch series of one metric: {'train': df, 'val': df} with columns step and
    ``name`` (absent ones skipped)."""
    series = {}
    for split, folder in SPLITS:
        path = Path(live_dir) / "plots" / "metrics" / folder / f"{name}.tsv"
        if path.is_file():
            series[split] = pd.read_csv(path, sep="\t")
    return series
