"""The cached arrays, write side (the preprocess stage): every image named in the labels decoded,
converted and resized once into ``{split}_images.npy`` (N, size, size, channels) uint8, with
``{split}_labels.npy`` (N, 3) int16 [age, gender, race] in ``labels.csv`` row order and
``profile.json``. :mod:`agegender.data.arrays` reads them back.
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
from agegender.data.arrays import LABEL_COLUMNS
from agegender.data.images import Profile, get_profile, load_array
from agegender.data.splits import SPLITS
from agegender.data.source import SourceError, iter_images

log = logging.getLogger(__name__)


def _write_at(fd: int, arr: np.ndarray, position: int) -> None:
    data = memoryview(arr).cast("B")
    while data:  # pwrite may write less than asked
        written = os.pwrite(fd, data, position)
        data, position = data[written:], position + written


def _create_npy(path: Path, shape: tuple[int, ...]) -> int:
    """Write the header ``np.save`` writes for uint8 ``shape`` and size the file (zeros, sparse);
    returns the data's offset."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": tuple(shape)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        offset = f.tell()
        f.truncate(offset + int(np.prod(shape)))
    return offset


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


def build_arrays(source: str | Path, labels: pd.DataFrame, profile: Profile, out_dir: str | Path,
                 workers: int | None = None, extra: str | Path | None = None) -> None:
    """Decode every image named in ``labels`` into ``out_dir/{split}_images.npy``, rows in
    ``labels`` order, each image written to its row as it is decoded (memory does not grow with
    the data). The files are byte for byte what ``np.save`` of the whole array writes.

    Uses ``workers`` processes (default: all cores). Images come from ``source`` (UTKFace) and the
    labelled sets under ``extra``. Raises ``SourceError`` naming files listed in ``labels`` but in
    neither.
    """
    wanted = set(labels["file"])
    out, where = {}, {}  # split -> (fd, data offset); file name -> (split, row)
    try:
        for split in SPLITS:
            names = labels.loc[labels["split"] == split, "file"]
            where.update((name, (split, row)) for row, name in enumerate(names))
            path = Path(out_dir) / f"{split}_images.npy"
            offset = _create_npy(path, (len(names), *profile.shape))
            out[split] = os.open(path, os.O_WRONLY), offset
        seen = set()
        workers = workers or os.cpu_count() or 1
        jobs = ((name, data, profile) for name, data in _images(source, extra, wanted))
        with Pool(workers) as pool:
            for name, arr in tqdm(pool.imap(_decode, jobs, chunksize=64), total=len(wanted),
                                  desc=f"preprocess {profile.name}", unit="img", mininterval=2,
                                  disable=not log.isEnabledFor(logging.INFO)):
                seen.add(name)
                if name in where:
                    split, row = where[name]
                    fd, offset = out[split]
                    _write_at(fd, np.ascontiguousarray(arr, dtype=np.uint8), offset + row * arr.size)
    finally:
        for fd, _ in out.values():
            os.close(fd)
    missing = wanted - seen
    if missing:
        where = source if extra is None else f"{source} or {extra}"
        raise SourceError(f"{len(missing)} files listed in the labels are not in {where}, "
                          f"e.g. {sorted(missing)[:3]}: run ingest again on this source")


def write_arrays(source: str | Path, labels_csv: str | Path, out_dir: str | Path,
                 profile_name: str, extra: str | Path | None = None) -> dict:
    """Build the arrays of ``profile_name`` for every split into ``out_dir``; returns profile.json's content."""
    profile = get_profile(profile_name)
    labels = pd.read_csv(labels_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    build_arrays(source, labels, profile, out_dir, extra=extra)
    counts = {}
    for split in SPLITS:
        rows = labels[labels["split"] == split]
        np.save(out_dir / f"{split}_labels.npy", rows[LABEL_COLUMNS].to_numpy(dtype=np.int16))
        counts[split] = len(rows)
    meta = {"profile": profile.name, "shape": list(profile.shape), "counts": counts}
    (out_dir / "profile.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
