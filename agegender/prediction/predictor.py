"""Predicting age and gender on users' pictures: the :class:`Predictor` and :func:`predict`.

Files and folders (searched recursively for image files) go through the same decoding and pixel
conversion as training (:mod:`agegender.data.images`). Photos are searched for faces and their
landmarks with MTCNN and each face is cut out aligned like a UTKFace chip (:mod:`agegender.prediction.faces`);
``detect=False`` takes each image as a face crop already. One record per face, or one record with
an ``error`` for an input that could not be used.

The saved model says what it is (family, input profile, age decoding; :mod:`agegender.model.saved`),
so nothing else is needed::

    from agegender.prediction.predictor import predict, Predictor
    records = predict(["photo.jpg", "folder/"])          # model loaded for this call
    p = Predictor("models/model.keras")                 # or: loaded once, used many times
    records = p.predict([pil_image, "crop.png"], detect=False)
"""
from __future__ import annotations

import csv
import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageOps

from agegender.data.bins import FIVE_YEAR
from agegender.data.images import ImageDecodeError, Profile, decode, to_array, to_mode
from agegender.model.saved import ModelInfo, load_model
from agegender.prediction.faces import (LANDMARKS, Box, Detector, DetectorUnavailable, Face, cut_face,
                                        make_detector)

DEFAULT_MODEL = "models/model.keras"
# Folders are searched for these; a file named on the command line is tried whatever its name.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
FIELDS = ["file", "face", "box", "confidence", "landmarks", "age", "age_group", "bin", "gender",
          "gender_probability", "error"]
CHUNK = 256  # faces per model call (at least one batch)
NO_FACE = "no face found (if the image is already a face crop, use --no-detect / detect=False)"


# --- inputs -------------------------------------------------------------------------------------

@dataclass
class _Item:
    name: str
    source: object  # Path, bytes, PIL image or array; None with an error
    error: str | None = None


@dataclass
class _Prepared:
    name: str
    faces: list[Face] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


def expand(images: Iterable) -> list[_Item]:
    """Inputs -> items in order. Paths to folders become their image files, recursively and
    sorted (hidden files and folders skipped); a missing path becomes an error item."""
    if isinstance(images, (str, os.PathLike, bytes, Image.Image, np.ndarray)):
        images = [images]
    items = []
    for i, obj in enumerate(images):
        if isinstance(obj, (str, os.PathLike)):
            path = Path(obj)
            if path.is_dir():
                found = sorted(p for p in path.rglob("*")
                               if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                               and not any(part.startswith(".") for part in p.relative_to(path).parts))
                items.extend(_Item(str(p), p) for p in found)
                if not found:
                    items.append(_Item(str(path), None, "no image files in this folder (looked for "
                                       f"{', '.join(sorted(IMAGE_SUFFIXES))})"))
            elif path.exists():
                items.append(_Item(str(path), path))
            else:
                items.append(_Item(str(path), None, "no such file or folder"))
        elif isinstance(obj, bytes):
            items.append(_Item(f"<bytes {i}>", obj))
        elif isinstance(obj, Image.Image):
            items.append(_Item(getattr(obj, "filename", "") or f"<image {i}>", obj))
        elif isinstance(obj, np.ndarray):
            items.append(_Item(f"<array {i}>", obj))
        else:
            raise TypeError(f"cannot predict on {type(obj).__name__}: give paths, bytes, "
                            "PIL images or uint8 arrays")
    return items


def _open(item: _Item) -> Image.Image:
    src = item.source
    if isinstance(src, Path):
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"cannot read file ({exc.strerror or exc})") from exc
        return decode(data, item.name)
    if isinstance(src, bytes):
        return decode(src, item.name)
    if isinstance(src, np.ndarray):
        channels = src.shape[2] if src.ndim == 3 else 1
        if src.dtype != np.uint8 or src.ndim not in (2, 3) or channels not in (1, 3, 4):
            raise ImageDecodeError(f"expected a uint8 array (H, W), (H, W, 1|3|4), got "
                                   f"{src.dtype} {src.shape}")
        return Image.fromarray(src[:, :, 0] if src.ndim == 3 and src.shape[2] == 1 else src)
    return ImageOps.exif_transpose(src)  # no-op unless it still carries an EXIF orientation


def _message(exc: Exception, name: str) -> str:
    text = str(exc)
    return text[len(name) + 2:] if text.startswith(f"{name}: ") else text


def prepare(item: _Item, profile: Profile, detector: Detector | None) -> _Prepared:
    """Decode one input and cut its faces into model-ready arrays; errors are kept, not raised."""
    out = _Prepared(item.name, error=item.error)
    if out.error:
        return out
    try:
        img = to_mode(_open(item), profile.channels)
        if detector is None:
            out.faces = [Face(Box(0, 0, img.width, img.height))]
            out.arrays = [to_array(img, profile)]
        else:  # a detector of boxes alone may stand in: a Box is a Face without landmarks
            out.faces = [f if isinstance(f, Face) else Face(f) for f in detector(img)]
            out.arrays = [to_array(cut_face(img, f), profile) for f in out.faces]
            if not out.faces:
                out.error = NO_FACE
    except DetectorUnavailable:
        raise
    except Exception as exc:  # one bad file must not stop the others: report it with its record
        out.error = _message(exc, item.name) if isinstance(exc, ImageDecodeError) \
            else f"{type(exc).__name__}: {exc}"
        out.faces, out.arrays = [], []
    return out


# --- prediction ---------------------------------------------------------------------------------

class Predictor:
    """A model loaded once (Keras safe mode), ready for any number of calls.

    ``model`` is a ``.keras`` path saved by the pipeline (it carries its :class:`ModelInfo`), or a
    Keras model given together with its ``info``. ``detector`` is a detector's name
    (``"mtcnn"``, the default, or ``"haar"``) or any ``callable(PIL image) -> [Face or Box]``.
    Faces with landmarks are cut aligned like UTKFace's chips, boxes alone as a square around them. ``batch_size`` faces go through the network at once,
    ``chunk`` faces per model call. Raises :class:`~agegender.model.saved.ModelFileError` for a
    missing model file or one saved without its information.
    """

    def __init__(self, model=DEFAULT_MODEL, *, info: ModelInfo | None = None,
                 detector: Detector | str = "mtcnn", batch_size: int = 64, tta: bool = True,
                 workers: int | None = None, chunk: int = CHUNK):
        if isinstance(model, (str, os.PathLike)):
            self.model, self.info = load_model(model)
        elif info is None:
            raise TypeError("a Keras model given as an object needs its ModelInfo (info=...)")
        else:
            self.model, self.info = model, info
        self.profile = self.info.profile
        self._detector = detector
        self.batch_size, self.tta = int(batch_size), tta
        # faces per model call: each predict() call costs tens of ms on top of its batches, so
        # several batches go at once (measured on 2 cores: 250 crops/s in calls of 64, 390 of 256)
        self.chunk = max(1, int(chunk))
        self.workers = workers or os.cpu_count() or 1

    @property
    def detector(self) -> Detector:
        if isinstance(self._detector, str):  # built on first use: raises DetectorUnavailable with the fix
            self._detector = make_detector(self._detector)
        return self._detector

    def predict(self, images, detect: bool = True) -> list[dict]:
        """Records (see :data:`FIELDS`) for ``images``: paths (files or folders), encoded bytes,
        PIL images or uint8 arrays. One per face found, in input order; failed inputs give one
        record with ``error`` set."""
        return list(self.iter_records(images, detect))

    def iter_records(self, images, detect: bool = True) -> Iterator[dict]:
        """Like :meth:`predict` but yields records as batches finish. Decoding and face finding run
        on ``workers`` threads (PIL and OpenCV release the GIL) a window ahead of the model."""
        detector = self.detector if detect else None
        items = iter(expand(images))
        window = self.chunk + 4 * self.workers
        pending: list[_Prepared] = []
        faces = 0
        with ThreadPoolExecutor(self.workers) as pool:
            futures = deque(pool.submit(prepare, it, self.profile, detector)
                            for it in _take(items, window))
            while futures:
                prepared = futures.popleft().result()
                for it in _take(items, 1):
                    futures.append(pool.submit(prepare, it, self.profile, detector))
                pending.append(prepared)
                faces += len(prepared.arrays)
                if faces >= self.chunk:
                    yield from self._run(pending)
                    pending, faces = [], 0
            yield from self._run(pending)

    def _run(self, pending: list[_Prepared]) -> Iterator[dict]:
        from agegender.model.inference import predict

        arrays = [a for p in pending for a in p.arrays]
        decoded = {}
        if arrays:
            decoded = predict(self.model, self.info.age_output, np.stack(arrays), self.batch_size,
                              self.tta)
        k = 0
        for p in pending:
            if p.error:
                yield _record(p.name, error=p.error)
                continue
            for index, face in enumerate(p.faces):
                yield self._face_record(p.name, index, face, decoded, k)
                k += 1

    def _face_record(self, name, index: int, face: Face, decoded, k) -> dict:
        age = float(decoded["pred_age"][k])
        p_female = float(decoded["gender_prob"][k])
        female = p_female >= 0.5
        own_bin = None
        if "pred_bin" in decoded:
            own_bin = self.info.age_output.scheme.labels()[int(decoded["pred_bin"][k])]
        landmarks = None if face.landmarks is None else {
            part: [round(float(v), 1) for v in xy] for part, xy in zip(LANDMARKS, face.landmarks)}
        confidence = None if face.confidence is None else round(face.confidence, 4)
        return _record(name, face=index, box=face.box.as_list(), confidence=confidence,
                       landmarks=landmarks, age=round(age, 1),
                       age_group=FIVE_YEAR.label_of([age])[0], bin=own_bin,
                       gender="female" if female else "male",
                       gender_probability=round(p_female if female else 1.0 - p_female, 4))


def _take(it: Iterator, n: int) -> list:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def _record(file, **values) -> dict:
    rec = dict.fromkeys(FIELDS)
    rec.update(file=file, **values)
    return rec


def predict(images, model=DEFAULT_MODEL, *, detect: bool = True, **options) -> list[dict]:
    """One-call API: load ``model`` (see :class:`Predictor` for ``options``) and predict ``images``.
    For many calls build a :class:`Predictor` once instead."""
    return Predictor(model, **options).predict(images, detect=detect)


# --- output and command line --------------------------------------------------------------------

CSV_FIELDS = ["file", "face", "box_x", "box_y", "box_w", "box_h", "confidence",
              *(f"{part}_{axis}" for part in LANDMARKS for axis in "xy"),
              "age", "age_group", "bin", "gender", "gender_probability", "error"]


def write_records(records: list[dict], fmt: str, out) -> None:
    """Write records as CSV (the box as four columns) or as a JSON list to a text stream."""
    if fmt == "json":
        json.dump(records, out, indent=2)
        out.write("\n")
        return
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        row = {k: v for k, v in rec.items() if k not in ("box", "landmarks")}
        box = rec["box"] or [None] * 4
        row.update(zip(("box_x", "box_y", "box_w", "box_h"), box))
        for part, xy in (rec["landmarks"] or {}).items():
            row.update({f"{part}_x": xy[0], f"{part}_y": xy[1]})
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
