"""The cached arrays: every kept image decoded, converted and resized once, saved as uint8 ``.npy``.

For each split, ``{split}_images.npy`` (N, size, size, channels) uint8 and ``{split}_labels.npy``
(N, 3) int16 with columns age, gender, race, in ``labels.csv`` row order, plus ``profile.json``
saying which profile the arrays hold.
"""
from __future__ import annotations

import json
import logging
import os
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from agegender.data import labelled
from agegender.data.images import Profile, get_profile, load_array
from agegender.data.ingest import SPLITS
from agegender.data.source import SourceError, iter_images

LABEL_COLUMNS = ["age", "gender", "race"]
log = logging.getLogger(__name__)


def _decode(job: tuple[str, bytes, Profile]) -> tuple[str, np.ndarray]:
    name, data, profile = job
    return name, load_array(data, profile, name)


def _images(source, extra, wanted: set[str]):
    """UTKFace's wanted images by base name, then the rest from the labelled sets under ``extra``."""
    found = set()
    for name, data in iter_images(source, wanted):
        found.add(name)
        yield name, data
    if extra is not None:
        yield from labelled.iter_listed(extra, wanted - found)


def build_arrays(source: str | Path, labels: pd.DataFrame, profile: Profile,
                 workers: int | None = None, extra: str | Path | None = None) -> dict[str, np.ndarray]:
    """Decode every image named in ``labels`` into one uint8 array per split.

    Returns ``{split: images}`` with rows in ``labels`` order. Uses ``workers`` processes
    (default: all cores). Images come from ``source`` (UTKFace) and the labelled sets under
    ``extra``. Raises ``SourceError`` naming files listed in ``labels`` but in neither.
    """
    wanted = set(labels["file"])
    position = {name: i for i, name in enumerate(labels["file"])}
    out = np.zeros((len(labels), *profile.shape), dtype=np.uint8)
    seen = set()
    workers = workers or os.cpu_count() or 1
    jobs = ((name, data, profile) for name, data in _images(source, extra, wanted))
    with Pool(workers) as pool:
        for name, arr in tqdm(pool.imap(_decode, jobs, chunksize=64), total=len(wanted),
                              desc=f"preprocess {profile.name}", unit="img", mininterval=2,
                              disable=not log.isEnabledFor(logging.INFO)):
            out[position[name]] = arr
            seen.add(name)
    missing = wanted - seen
    if missing:
        where = source if extra is None else f"{source} or {extra}"
        raise SourceError(f"{len(missing)} files listed in the labels are not in {where}, "
                          f"e.g. {sorted(missing)[:3]}: run ingest again on this source")
    return {split: out[(labels["split"] == split).to_numpy()] for split in SPLITS}


def write_arrays(source: str | Path, labels_csv: str | Path, out_dir: str | Path,
                 profile_name: str, extra: str | Path | None = None) -> dict:
    """Build the arrays of ``profile_name`` for every split into ``out_dir``; returns profile.json's content."""
    profile = get_profile(profile_name)
    labels = pd.read_csv(labels_csv)
    arrays = build_arrays(source, labels, profile, extra=extra)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        rows = labels[labels["split"] == split]
        np.save(out_dir / f"{split}_images.npy", arrays[split])
        np.save(out_dir / f"{split}_labels.npy", rows[LABEL_COLUMNS].to_numpy(dtype=np.int16))
        counts[split] = len(rows)
    meta = {"profile": profile.name, "shape": list(profile.shape), "counts": counts}
    (out_dir / "profile.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def load_split(data_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N,S,S,C), labels int16 (N,3) [age, gender, race]) of one cached split."""
    data_dir = Path(data_dir)
    path = data_dir / f"{split}_images.npy"
    if not path.is_file():
        raise SourceError(f"cached arrays not found: {path} (run the preprocess stage: dvc repro preprocess)")
    return np.load(path), np.load(data_dir / f"{split}_labels.npy")
