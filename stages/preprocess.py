"""Stage 2, preprocess: decode, convert and resize every kept image once, cached as uint8 ``.npy``.

Writes, for each split, ``{split}_images.npy`` (N, size, size, channels) uint8 and
``{split}_labels.npy`` (N, 3) int16 with columns age, gender, race, in ``labels.csv`` row order,
plus ``profile.json`` saying which profile the arrays hold.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from stages.images import Profile, get_profile, load_array
from stages.ingest import SPLITS
from stages.source import iter_images

LABEL_COLUMNS = ["age", "gender", "race"]


def _decode(job: tuple[str, bytes, Profile]) -> tuple[str, np.ndarray]:
    name, data, profile = job
    return name, load_array(data, profile, name)


def build_arrays(source: str | Path, labels: pd.DataFrame, profile: Profile,
                 workers: int | None = None) -> dict[str, np.ndarray]:
    """Decode every image named in ``labels`` into one uint8 array per split.

    Returns ``{split: images}`` with rows in ``labels`` order. Uses ``workers`` processes
    (default: all cores). Raises ``KeyError`` naming files listed in ``labels`` but not in ``source``.
    """
    wanted = set(labels["file"])
    position = {name: i for i, name in enumerate(labels["file"])}
    out = np.zeros((len(labels), *profile.shape), dtype=np.uint8)
    seen = set()
    workers = workers or os.cpu_count() or 1
    jobs = ((name, data, profile) for name, data in iter_images(source, wanted))
    with Pool(workers) as pool:
        for name, arr in tqdm(pool.imap(_decode, jobs, chunksize=64), total=len(wanted),
                              desc=f"preprocess {profile.name}", unit="img", mininterval=2):
            out[position[name]] = arr
            seen.add(name)
    missing = wanted - seen
    if missing:
        raise KeyError(f"{len(missing)} files listed in labels.csv are not in {source}, "
                       f"e.g. {sorted(missing)[:3]}")
    return {split: out[(labels["split"] == split).to_numpy()] for split in SPLITS}


def run(source: str | Path, labels_csv: str | Path, out_dir: str | Path, profile_name: str) -> dict:
    profile = get_profile(profile_name)
    labels = pd.read_csv(labels_csv)
    arrays = build_arrays(source, labels, profile)
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
    return np.load(data_dir / f"{split}_images.npy"), np.load(data_dir / f"{split}_labels.npy")


def main(argv: list[str] | None = None) -> int:
    from stages.config import load_params
    from stages.registry import profile_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--labels", default="data/interim/labels.csv")
    parser.add_argument("--out-dir", default="data/processed")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    meta = run(params["data"]["source"], args.labels, args.out_dir, profile_for(params["model"]))
    print(f"preprocess: {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
