"""The cached arrays, write side (the preprocess stage): every image named in the labels decoded,
converted and resized once into ``{split}_images.npy`` (N, size, size, channels) uint8, with
``{split}_labels.npy`` (N, 3) int16 [age, gender, race] in ``labels.csv`` row order and
``profile.json``. :mod:`agegender.data.arrays` reads them back.

With a recutter (``preprocess.faces: aligned``: an :class:`agegender.faces.recut.Recutter`, given
by the stage, so this data layer imports no face finding), each image of the splits named is first
cut again as the predictor cuts a photo (MTCNN, aligned; the chip itself where no face is found),
and :func:`faces_report` says which were found.
"""
from __future__ import annotations

import json
import logging
import os
from contextlib import nullcontext
from multiprocessing import Pool, get_context
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from agegender.data import labelled
from agegender.data.arrays import LABEL_COLUMNS
from agegender.data.images import Profile, decode, get_profile, load_array, to_array, to_mode
from agegender.data.source import SourceError, iter_images
from agegender.data.splits import SPLITS

log = logging.getLogger(__name__)


def _write_at(fd: int, arr: np.ndarray, position: int) -> None:
    data = memoryview(arr).cast("B")
    while data:  # pwrite may write less than asked
        written = os.pwrite(fd, data, position)
        data, position = data[written:], position + written


def create_npy(path: Path, shape: tuple[int, ...]) -> int:
    """Write the header ``np.save`` writes for uint8 ``shape`` and size the file (zeros, sparse);
    returns the data's offset."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": tuple(shape)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        offset = f.tell()
        f.truncate(offset + int(np.prod(shape)))
    return offset


NO_FACE = "no face found"
_recutter = None  # the recutter of this process (_use_recutter)
_recutter_error: Exception | None = None  # why a worker could not prepare it: raised by its first job


def _use_recutter(recutter, threads: int | None = None) -> None:
    """Set this process's recutter, prepared here (each worker process builds its own detector;
    ``threads``: TensorFlow threads per process, set before it starts)."""
    global _recutter, _recutter_error
    try:
        recutter.prepare(threads)
        _recutter = recutter
    except Exception as exc:  # raised in a pool's initializer it would respawn the worker forever
        _recutter_error = exc


def _decode(job: tuple[str, bytes, Profile, bool]) -> tuple[str, np.ndarray, int | None, str | None]:
    """One image as the profile's array; with ``cut``, recut first by this process's recutter.
    Returns (name, array, faces found or None when not cut, why it was kept as the chip or None)."""
    name, data, profile, cut = job
    if not cut:
        return name, load_array(data, profile, name), None, None
    if _recutter_error is not None:
        raise _recutter_error
    img = to_mode(decode(data, name), profile.channels)  # as the predictor converts before detecting
    try:
        face, found = _recutter(img)
    except Exception as exc:  # one image the detector fails on keeps its chip; the rest go on
        log.warning("%s: face detection failed (%s: %s): kept as the chip", name, type(exc).__name__, exc)
        return name, to_array(img, profile), 0, f"detector failed: {type(exc).__name__}: {exc}"
    return name, to_array(Image.fromarray(face), profile), found, None if found else NO_FACE


def _images(source, extra, wanted: set[str]):
    """UTKFace's wanted images by base name, then the rest from the labelled sets under ``extra``."""
    found = set()
    for name, data in iter_images(source, wanted):
        found.add(name)
        yield name, data
    if extra is not None:
        yield from labelled.iter_listed(extra, wanted - found)


def build_arrays(source: str | Path, labels: pd.DataFrame, profile: Profile, out_dir: str | Path,
                 workers: int | None = None, extra: str | Path | None = None,
                 recutter=None, cut_splits: tuple[str, ...] = SPLITS) -> dict[str, tuple[int, str | None]]:
    """Decode every image named in ``labels`` into ``out_dir/{split}_images.npy``, rows in
    ``labels`` order, each image written to its row as it is decoded (memory does not grow with
    the data). The files are byte for byte what ``np.save`` of the whole array writes.

    Uses ``workers`` processes (default: all cores). Images come from ``source`` (UTKFace) and the
    labelled sets under ``extra``. Raises ``SourceError`` naming files listed in ``labels`` but in
    neither.

    With ``recutter`` (:class:`agegender.faces.recut.Recutter`: of a detector's name, prepared in
    each worker process, or of a detector callable, run in this process alone), every image of
    ``cut_splits`` is recut as the predictor cuts a face. Returns, per recut file, (faces found,
    why it was kept as the chip or None); {} without a recutter.
    """
    wanted = set(labels["file"])
    cut = set() if recutter is None else set(labels.loc[labels["split"].isin(cut_splits), "file"])
    record = {}
    out, where = {}, {}  # split -> (fd, data offset); file name -> (split, row)
    try:
        for split in SPLITS:
            names = labels.loc[labels["split"] == split, "file"]
            where.update((name, (split, row)) for row, name in enumerate(names))
            path = Path(out_dir) / f"{split}_images.npy"
            offset = create_npy(path, (len(names), *profile.shape))
            out[split] = os.open(path, os.O_WRONLY), offset
        seen = set()
        workers = workers or os.cpu_count() or 1
        jobs = ((name, data, profile, name in cut) for name, data in _images(source, extra, wanted))
        if recutter is None:
            pool = Pool(workers)
        elif recutter.in_workers:  # TensorFlow in each worker: spawned, not forked
            pool = get_context("spawn").Pool(workers, _use_recutter, (recutter, 1 if workers > 1 else None))
        else:
            _use_recutter(recutter)
            pool = None
        with pool if pool is not None else nullcontext():
            done = map(_decode, jobs) if pool is None else \
                pool.imap(_decode, jobs, chunksize=64 if recutter is None else 8)
            for name, arr, found, reason in tqdm(done, total=len(wanted), mininterval=2,
                                                 desc=f"preprocess {profile.name}", unit="img",
                                                 disable=not log.isEnabledFor(logging.INFO)):
                seen.add(name)
                if found is not None:
                    record[name] = found, reason
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
    return record


def faces_report(labels: pd.DataFrame, record: dict[str, tuple[int, str | None]], recutter,
                 cut_splits) -> dict:
    """What preprocess did to the faces (``paths.preprocess_faces``): per split the images, how
    many were recut and found, kept as the chip, or held several faces; then the files kept as
    chips with the reason and the files with several faces (labels order)."""
    splits, kept, several = {}, [], []
    for split in SPLITS:
        names = labels.loc[labels["split"] == split, "file"]
        counts = {"images": len(names), "cut": 0, "found": 0, "kept_as_chip": 0, "several_faces": 0}
        for name in names:
            if name not in record:
                continue
            found, reason = record[name]
            counts["cut"] += 1
            counts["found"] += found > 0
            counts["several_faces"] += found > 1
            if reason:
                counts["kept_as_chip"] += 1
                kept.append({"file": name, "split": split, "reason": reason})
            if found > 1:
                several.append({"file": name, "split": split, "faces": found})
        counts["found_rate"] = round(counts["found"] / counts["cut"], 4) if counts["cut"] else None
        splits[split] = counts
    report = {"faces": "chips" if recutter is None else "aligned",
              "detector": None if recutter is None else recutter.name,
              "cut_splits": [] if recutter is None else list(cut_splits),
              "splits": splits, "kept_as_chip": kept, "several_faces": several}
    if recutter is not None:
        report["how"] = recutter.how()
    return report


def write_arrays(source: str | Path, labels_csv: str | Path, out_dir: str | Path,
                 profile_name: str, extra: str | Path | None = None, recutter=None,
                 cut_splits=SPLITS, faces_out: str | Path | None = None, workers: int | None = None) -> dict:
    """Build the arrays of ``profile_name`` for every split into ``out_dir``; returns profile.json's
    content. The faces are the images as they are (UTKFace's chips), or with ``recutter`` (an
    :class:`agegender.faces.recut.Recutter`) the images of ``cut_splits`` recut as the predictor
    cuts a photo; :func:`faces_report` goes to ``faces_out`` when given."""
    profile = get_profile(profile_name)
    labels = pd.read_csv(labels_csv)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = build_arrays(source, labels, profile, out_dir, workers=workers, extra=extra,
                          recutter=recutter, cut_splits=tuple(cut_splits))
    if faces_out is not None:
        report = faces_report(labels, record, recutter, cut_splits)
        for split, c in report["splits"].items():
            if c["cut"]:
                log.info("preprocess %s: face found in %d of %d recut images (%d kept as chips)",
                         split, c["found"], c["cut"], c["kept_as_chip"])
        Path(faces_out).parent.mkdir(parents=True, exist_ok=True)
        Path(faces_out).write_text(json.dumps(report, indent=2) + "\n")
    counts = {}
    for split in SPLITS:
        rows = labels[labels["split"] == split]
        np.save(out_dir / f"{split}_labels.npy", rows[LABEL_COLUMNS].to_numpy(dtype=np.int16))
        counts[split] = len(rows)
    meta = {"profile": profile.name, "shape": list(profile.shape), "counts": counts}
    (out_dir / "profile.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
