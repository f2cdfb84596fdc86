"""Predicting age and gender on users' pictures: the :class:`Predictor` and :func:`predict`.

Files and folders (searched recursively for image files) go through the same decoding and pixel
conversion as training (:mod:`agegender.data.images`). Photos are searched for faces and their
landmarks with MTCNN and each face is cut out aligned like a UTKFace chip
(:mod:`agegender.faces.detector`, :mod:`agegender.faces.alignment`); ``detect=False``
takes each image as a face crop already. One record per face, or one record with an ``error`` for
an input that could not be used. Reading inputs: :mod:`agegender.prediction.inputs`; writing
records to files: :mod:`agegender.prediction.output`.

The saved model says what it is (family, input profile, age decoding; :mod:`agegender.serving.saved`),
so nothing else is needed::

    from agegender.prediction.predictor import predict, Predictor
    records = predict(["photo.jpg", "folder/"])          # model loaded for this call
    p = Predictor("models/model.keras")                 # or: loaded once, used many times
    records = p.predict([pil_image, "crop.png"], detect=False)
"""
from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from PIL import Image

from agegender.data.bins import FIVE_YEAR
from agegender.data.images import ImageDecodeError, Profile, to_array, to_mode
from agegender.faces.alignment import cut_face
from agegender.faces.detector import LANDMARKS, Box, Detector, DetectorUnavailable, Face
from agegender.faces.registry import make_detector
from agegender.prediction.inputs import MAX_FILE_MB, Item, expand, open_item
from agegender.serving.saved import ModelInfo, load_model

DEFAULT_MODEL = "models/model.keras"
FIELDS = ["file", "face", "box", "confidence", "landmarks", "age", "age_low", "age_high", "age_group",
          "bin", "gender", "gender_probability", "error"]
CHUNK = 256  # faces per model call (at least one batch)
NO_FACE = "no face found (if the image is already a face crop, use --no-detect / detect=False)"
log = logging.getLogger("predict")


@dataclass
class _Prepared:
    name: str
    faces: list[Face] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


def _message(exc: Exception, name: str) -> str:
    text = str(exc)
    return text[len(name) + 2:] if text.startswith(f"{name}: ") else text


def prepare(item: Item, profile: Profile, detector: Detector | None,
            max_bytes: int = MAX_FILE_MB * 2**20) -> _Prepared:
    """Decode one input and cut its faces into model-ready arrays; errors are kept, not raised."""
    out = _Prepared(item.name, error=item.error)
    if out.error:
        return out
    try:
        img = open_item(item, max_bytes)
        if img.width * img.height > Image.MAX_IMAGE_PIXELS:  # Pillow's own warning names no file
            log.warning("%s: %d x %d pixels, above Pillow's decompression-bomb limit of %d: "
                        "predicting anyway", item.name, img.width, img.height, Image.MAX_IMAGE_PIXELS)
        img = to_mode(img, profile.channels)
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
    Faces with landmarks are cut aligned like UTKFace's chips, boxes alone as a square around
    them; assign :attr:`detector` to switch detectors on a loaded model. ``batch_size`` faces go
    through the network at once, ``chunk`` faces per model call; files above ``max_file_mb`` are
    per-file errors. Raises :class:`~agegender.serving.saved.ModelFileError` for a missing, foreign
    or corrupt model file.
    """

    def __init__(self, model=DEFAULT_MODEL, *, info: ModelInfo | None = None,
                 detector: Detector | str = "mtcnn", batch_size: int = 64, tta: bool = True,
                 workers: int | None = None, chunk: int = CHUNK, max_file_mb: float = MAX_FILE_MB):
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
        self.max_bytes = int(max_file_mb * 2**20)

    @property
    def detector(self) -> Detector:
        """The face detector in use. Assign a name (:data:`~agegender.faces.registry.DETECTORS`)
        or a callable to switch (the model stays loaded)."""
        if isinstance(self._detector, str):  # built on first use: raises DetectorUnavailable with the fix
            self._detector = make_detector(self._detector)
        return self._detector

    @detector.setter
    def detector(self, detector: Detector | str) -> None:
        self._detector = detector

    def predict(self, images, detect: bool = True) -> list[dict]:
        """Records (see :data:`FIELDS`) for ``images``: paths (files or folders), encoded bytes,
        PIL images or uint8 arrays. One per face found, in input order; failed inputs give one
        record with ``error`` set."""
        return list(self.iter_records(images, detect))

    def iter_records(self, images, detect: bool = True) -> Iterator[dict]:
        """Like :meth:`predict` but yields records as batches finish."""
        for batch in self.iter_batches(images, detect):
            yield from batch

    def iter_batches(self, images, detect: bool = True) -> Iterator[list[dict]]:
        """The records of :meth:`predict`, one list per model call (every record of an input in
        the same list), as each finishes: what a writer flushes at once. Decoding and face finding
        run on ``workers`` threads (PIL and OpenCV release the GIL) a window ahead of the model."""
        detector = self.detector if detect else None
        items = iter(expand(images))
        window = self.chunk + 4 * self.workers
        pending: list[_Prepared] = []
        faces = 0
        pool = ThreadPoolExecutor(self.workers)
        try:
            futures = deque(pool.submit(prepare, it, self.profile, detector, self.max_bytes)
                            for it in _take(items, window))
            while futures:
                prepared = futures.popleft().result()
                for it in _take(items, 1):
                    futures.append(pool.submit(prepare, it, self.profile, detector, self.max_bytes))
                pending.append(prepared)
                faces += len(prepared.arrays)
                if faces >= self.chunk or len(pending) >= self.chunk:  # errors too: flushed in time
                    yield list(self._run(pending))
                    pending, faces = [], 0
            if pending:
                yield list(self._run(pending))
        finally:  # stopped early (Ctrl-C, an error, a consumer done): queued inputs are dropped
            pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, pending: list[_Prepared]) -> Iterator[dict]:
        from agegender.serving.inference import predict

        arrays = [a for p in pending for a in p.arrays]
        decoded = {}
        if arrays:
            decoded = predict(self.model, self.info.age_output, np.stack(arrays), self.batch_size,
                              self.tta, self.info.gender_temperature)
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
        # the 80 % interval of the age distribution, whole years (none for regression models)
        low, high = ((round(float(decoded["age_low"][k])), round(float(decoded["age_high"][k])))
                     if "age_low" in decoded else (None, None))
        # temperature-scaled when the model has a temperature: the confidence means what it says
        p_female = float(decoded["gender_prob"][k])
        female = p_female >= 0.5
        own_bin = None
        if "pred_bin" in decoded:
            own_bin = self.info.age_output.scheme.labels()[int(decoded["pred_bin"][k])]
        landmarks = None if face.landmarks is None else {
            part: [round(float(v), 1) for v in xy] for part, xy in zip(LANDMARKS, face.landmarks)}
        confidence = None if face.confidence is None else round(face.confidence, 4)
        return _record(name, face=index, box=face.box.as_list(), confidence=confidence,
                       landmarks=landmarks, age=round(age, 1), age_low=low, age_high=high,
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
