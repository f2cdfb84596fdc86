"""Shared by the face benchmarks: a split's UTKFace chips with their labels, and scoring records.

Not a benchmark itself. The chips are read straight from the source (archive or folder) that
ingest read; nothing is written.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from agegender.data.images import decode
from agegender.data.source import iter_images
from agegender.hardware import cpu_info


def load_chips(source, labels_csv, split: str, limit: int | None = None, seed: int = 0):
    """Return ``(chips, labels)``: RGB uint8 arrays (200, 200, 3) of ``split`` in ``labels.csv``
    order (a seeded random subset of ``limit`` when given) and their label rows (DataFrame)."""
    labels = pd.read_csv(labels_csv)
    labels = labels[labels["split"] == split].reset_index(drop=True)
    if limit and limit < len(labels):
        keep = np.sort(np.random.default_rng(seed).choice(len(labels), limit, replace=False))
        labels = labels.iloc[keep].reset_index(drop=True)
    position = {name: i for i, name in enumerate(labels["file"])}
    chips = [None] * len(labels)
    for name, data in iter_images(source, set(position)):
        chips[position[name]] = np.asarray(decode(data, name).convert("RGB"))
    return chips, labels


def score(records: list[dict], labels: pd.DataFrame, index: list[int] | None = None) -> dict:
    """Age MAE (years) and gender accuracy of one record per label row (``index``: the label row
    of each record; default one record per row in order). Rows without a record are not scored."""
    index = list(range(len(records))) if index is None else index
    ok = [(i, r) for i, r in zip(index, records) if not r.get("error")]
    if not ok:
        return {"n": 0, "mae": float("nan"), "gender_acc": float("nan")}
    rows = labels.iloc[[i for i, _ in ok]]
    age = np.array([r["age"] for _, r in ok], dtype=float)
    female = np.array([r["gender"] == "female" for _, r in ok])
    return {"n": len(ok),
            "mae": float(np.mean(np.abs(age - rows["age"].to_numpy()))),
            "gender_acc": float(np.mean(female == (rows["gender"].to_numpy() == 1)))}


def add_split_arguments(parser) -> None:
    """The options every chip benchmark takes: model, data source, labels, split and subset."""
    parser.add_argument("--model", default="models/model.keras")
    parser.add_argument("--source", default="data/raw/UTKFace.tar.gz")
    parser.add_argument("--labels", default="data/interim/labels.csv")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--limit", type=int, default=None, help="a seeded random subset of the split")


def machine() -> str:
    """The CPU the figures come from, as the project's hardware module reads it."""
    cpu = cpu_info()
    return f"CPU {cpu.model}, {cpu.cores} cores"
