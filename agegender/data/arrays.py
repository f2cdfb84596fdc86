"""The cached arrays, read side: every kept image decoded, converted and resized once by preprocess
(:mod:`agegender.data.preprocessing` writes them), saved as uint8 ``.npy``.

For each split, ``{split}_images.npy`` (N, size, size, channels) uint8 and ``{split}_labels.npy``
(N, 3) int16 with columns age, gender, race, in ``labels.csv`` row order, plus ``profile.json``
saying which profile the arrays hold.

Images are never held whole in memory: preprocess writes each decoded image to its row of the
file, and training, evaluation and k-fold read them back a batch at a time (:class:`ImageFiles`).
Labels (6 bytes a face) are loaded whole.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np

from agegender.errors import UserError

# Reading the cache must not import what writes it (labelled sets, ingest, the raw source): train,
# evaluate and k-fold import this module, and dvc.yaml's code deps follow the imports.
LABEL_COLUMNS = ["age", "gender", "race"]


class ArraysError(UserError, FileNotFoundError):
    """The cached arrays are missing, truncated or cut short: preprocess has to run again."""


class ImageFiles:
    """uint8 images (N, S, S, C): the rows of one or more ``.npy`` files, one after another (or a
    chosen subset of them), read from disk only when :meth:`take` asks for them. The same for the
    float16 feature maps (N, H, W, K) of the features stage (agegender/training/features.py).

    Reads are positioned reads (``os.preadv``) into a fresh array, not a memory map: the pages read
    stay in the kernel's page cache, which the process' RSS does not count (a memory map's touched
    pages would count, as ``RssFile``, up to the whole file). ``images[rows]`` and
    :meth:`concat` make new views over the same files without reading or copying pixels.
    """

    def __init__(self, paths):
        self.paths = [Path(p) for p in paths]
        layouts = [_npy_layout(p) for p in self.paths]
        shapes = {(shape[1:], dtype) for _, shape, dtype in layouts}
        if len(shapes) != 1:
            raise ValueError(f"image files of different shapes: {dict(zip(map(str, self.paths), shapes))}")
        self.row_shape, self.dtype = shapes.pop()
        self._row_bytes = int(np.prod(self.row_shape)) * self.dtype.itemsize
        self._offsets = [offset for offset, _, _ in layouts]  # bytes before row 0 of each file
        self._starts = np.cumsum([0] + [shape[0] for _, shape, _ in layouts])  # first row of each file
        self._rows = None  # rows of the files this view holds, in order; None: all of them

    ndim = 4

    def __len__(self) -> int:
        return int(self._starts[-1]) if self._rows is None else len(self._rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    def __repr__(self) -> str:
        return f"ImageFiles({[str(p) for p in self.paths]}, shape={self.shape})"

    def _global(self, indices) -> np.ndarray:
        """Rows of this view -> rows of the files, as int64 (IndexError when out of range)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} images")
        idx = np.where(idx < 0, idx + len(self), idx)
        return idx if self._rows is None else self._rows[idx]

    def __getitem__(self, key) -> ImageFiles:
        """A view of some rows: ``key`` a slice, a 1-D sequence of row indices or a boolean mask
        (N,) (no pixels read)."""
        if isinstance(key, (int, np.integer, tuple)):
            raise TypeError("index ImageFiles by a slice or an array of rows; read rows with take()")
        rows = np.arange(len(self))[key] if isinstance(key, slice) else np.asarray(key)
        if rows.dtype == bool:
            if rows.shape != (len(self),):
                raise IndexError(f"boolean mask of shape {rows.shape} for {len(self)} images")
            rows = np.flatnonzero(rows)
        view = copy.copy(self)
        view._rows = self._global(rows)
        return view

    def take(self, indices) -> np.ndarray:
        """The images at ``indices`` (B,) of this view, uint8 (B, S, S, C), in the order asked.

        Rows are read in file order, a run of consecutive rows in one read, then put in order."""
        rows = self._global(indices)
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        out = np.empty((len(rows), *self.row_shape), dtype=self.dtype)
        flat = out.reshape(len(rows), -1)
        file_of = np.searchsorted(self._starts, rows, side="right") - 1
        breaks = np.flatnonzero((np.diff(rows) != 1) | (np.diff(file_of) != 0)) + 1
        fds = {}
        try:
            for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(rows)]):
                f = int(file_of[a])
                if f not in fds:
                    fds[f] = os.open(self.paths[f], os.O_RDONLY)
                offset = self._offsets[f] + int(rows[a] - self._starts[f]) * self._row_bytes
                _read_into(fds[f], memoryview(flat[a:b]).cast("B"), offset, self.paths[f])
        finally:
            for fd in fds.values():
                os.close(fd)
        if (order == np.arange(len(order))).all():
            return out
        result = np.empty_like(out)
        result[order] = out
        return result

    @classmethod
    def concat(cls, parts: list[ImageFiles]) -> ImageFiles:
        """The rows of ``parts`` one after another, as one view (no pixels read or copied)."""
        if not all(isinstance(p, ImageFiles) for p in parts):
            raise TypeError("ImageFiles.concat joins ImageFiles only")
        joined = cls([p for part in parts for p in part.paths])
        rows, base, subset = [], 0, False
        for part in parts:
            rows.append(base + (np.arange(len(part)) if part._rows is None else part._rows))
            subset |= part._rows is not None
            base += int(part._starts[-1])
        joined._rows = np.concatenate(rows) if subset else None
        return joined


def concat_images(parts: list) -> np.ndarray | ImageFiles:
    """Images (N_i, S, S, C) one after another: arrays are concatenated, :class:`ImageFiles`
    joined as a view."""
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts)
    return type(parts[0]).concat(parts)  # ImageFiles, or agegender.training.features.FlipPairs


def hold_out(train: tuple, val: tuple, fraction: float, seed: int) -> tuple[tuple, tuple, tuple]:
    """Split a share ``fraction`` of each of ``train`` and ``val`` (each (images (N, ...), labels
    (N, 3))) off at random (``seed``): returns (train rest, val rest, held out = both shares, train's
    first). Images may be arrays or :class:`ImageFiles` (views, nothing read). The train stage
    holds faces out of a final fit this way to fit the gender temperature on
    (``calibration_holdout``, :mod:`agegender.serving.calibration`)."""
    rng = np.random.default_rng(seed)
    rests, held = [], []
    for images, labels in (train, val):
        n = len(labels)
        out = np.zeros(n, dtype=bool)
        out[rng.choice(n, int(round(fraction * n)), replace=False)] = True
        keep, take = np.flatnonzero(~out), np.flatnonzero(out)
        rests.append((images[keep], labels[keep]))
        held.append((images[take], labels[take]))
    held_images = concat_images([held[0][0], held[1][0]])
    return rests[0], rests[1], (held_images, np.concatenate([held[0][1], held[1][1]]))


def image_chunks(images: np.ndarray | ImageFiles, rows: int = 4096):
    """The images in order, ``rows`` at a time, as C-contiguous uint8 arrays (e.g. to hash them)."""
    for start in range(0, len(images), rows):
        stop = min(start + rows, len(images))
        if isinstance(images, np.ndarray):
            yield np.ascontiguousarray(images[start:stop])
        else:
            yield images.take(np.arange(start, stop))


ROW_DTYPES = (np.dtype(np.uint8), np.dtype(np.float16))  # images; cached features


def _npy_layout(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """(bytes before the data, shape, dtype) of a C-order uint8 or float16 ``.npy`` file of 4-D rows."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        shape, fortran, dtype = readers[version](f)
        offset = f.tell()
    if dtype not in ROW_DTYPES or fortran or len(shape) != 4:
        raise ValueError(f"{path}: expected C-order uint8 images (N, S, S, C), got {dtype} {shape}")
    if os.path.getsize(path) != offset + int(np.prod(shape)) * dtype.itemsize:
        raise ArraysError(f"{path} is truncated: run the stage that wrote it again")
    return offset, tuple(shape), np.dtype(dtype)


def _read_into(fd: int, buf: memoryview, offset: int, path: Path) -> None:
    done = 0
    while done < len(buf):
        n = os.preadv(fd, [buf[done:]], offset + done)
        if n == 0:
            raise ArraysError(f"{path} ended early: run the preprocess stage again")
        done += n


def load_split(data_dir: str | Path, split: str) -> tuple[ImageFiles, np.ndarray]:
    """Return (images uint8 (N,S,S,C) read from disk on demand, labels int16 (N,3) [age, gender,
    race]) of one cached split."""
    data_dir = Path(data_dir)
    path = data_dir / f"{split}_images.npy"
    if not path.is_file():
        raise ArraysError(f"cached arrays not found: {path} (run the preprocess stage: dvc repro preprocess)")
    return ImageFiles([path]), np.load(data_dir / f"{split}_labels.npy")
