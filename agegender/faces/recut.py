"""A face chip cut again the way the predictor cuts a photo: the chip searched by the predictor's
detector and the face cut by its alignment (:func:`~agegender.faces.alignment.cut_face`), so a
model can be trained, or scored, on what the predictor shows it.

The one place this is done: preprocess (``preprocess.faces: aligned``, through a :class:`Recutter`)
and the benchmarks that score chips both ways (``benchmarks/quality/cuts.py``) call :func:`recut`.

- The chip is searched padded by :data:`CHIP_PAD` grey pixels on each side, as
  ``benchmarks/quality/chip_margin.py`` measured the alignment template on (a face that fills its chip is
  then found like a face in a photo); the face is cut from the chip itself, so beyond its edge the
  edge pixels are repeated, as the predictor does at a photo's edge.
- Of several faces, the one whose box centre is nearest the chip's centre is cut (the face the
  chip was cut around; others are at its edges), the larger box on a tie.
- No face found: the chip comes back as it is.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from agegender.faces.alignment import cut_face
from agegender.faces.detector import Box, Detector, Face
from agegender.faces.registry import make_detector

CHIP_PAD = 50  # grey pixels around the chip while searching it (docs/data.md: why 50)
PAD_GREY = (128, 128, 128)


def pad_chip(chip: Image.Image, pad: int = CHIP_PAD) -> Image.Image:
    """``chip`` pasted in the middle of a grey picture ``pad`` pixels larger on each side (its mode kept)."""
    grey = PAD_GREY[0] if chip.mode == "L" else PAD_GREY
    padded = Image.new(chip.mode, (chip.width + 2 * pad, chip.height + 2 * pad), grey)
    padded.paste(chip, (pad, pad))
    return padded


def _shift(face: Face | Box, dx: float, dy: float) -> Face:
    face = face if isinstance(face, Face) else Face(face)
    b = face.box
    landmarks = None if face.landmarks is None else face.landmarks + [dx, dy]
    return Face(Box(int(b.x + dx), int(b.y + dy), b.w, b.h), face.confidence, landmarks)


def pick_face(faces, width: int, height: int) -> Face | None:
    """Of ``faces`` (in chip pixels), the one whose box centre is nearest the chip centre, the
    larger box on a tie (then the first); None when there is none."""
    def key(item):
        i, f = item
        b = f.box
        off = (b.x + b.w / 2 - width / 2) ** 2 + (b.y + b.h / 2 - height / 2) ** 2
        return off, -b.w * b.h, i
    return min(enumerate(faces), key=key)[1] if faces else None


def recut(chip: np.ndarray | Image.Image, detector: Detector, pad: int = CHIP_PAD) -> tuple[np.ndarray, int]:
    """Cut ``chip`` (uint8 array (H, W) or (H, W, C), or a PIL image) as the predictor cuts a face
    found in a photo. Returns ``(cut, faces)``: the cut as a uint8 array (for an aligned cut
    ``CHIP_PIXELS`` square, the chip's mode and channels), and how many faces ``detector`` found
    (0: none, and ``cut`` is the chip itself, unchanged). Deterministic for a deterministic detector.
    """
    img = chip if isinstance(chip, Image.Image) else Image.fromarray(np.asarray(chip, dtype=np.uint8))
    found = [_shift(f, -pad, -pad) for f in detector(pad_chip(img, pad))]
    face = pick_face(found, img.width, img.height)
    if face is None:
        return np.asarray(img, dtype=np.uint8), 0
    return np.asarray(cut_face(img, face), dtype=np.uint8), len(found)


class Recutter:
    """What preprocess is given to recut chips (``preprocess.faces: aligned``): :func:`recut` with
    the detector ``detector``, a name of :data:`~agegender.faces.registry.DETECTORS` (built in each
    worker process by :meth:`prepare`; the recutter pickles as the name alone) or a detector
    callable (run in the calling process)."""

    def __init__(self, detector: str | Detector = "mtcnn", pad: int = CHIP_PAD):
        self.detector, self.pad = detector, pad
        self._built = None if isinstance(detector, str) else detector

    @property
    def name(self) -> str:
        return self.detector if isinstance(self.detector, str) else type(self.detector).__name__

    @property
    def in_workers(self) -> bool:
        """Whether each worker process builds its own detector (a name: TensorFlow per process)."""
        return isinstance(self.detector, str)

    def how(self) -> str:
        return (f"each chip searched padded by {self.pad} grey px, the face whose box centre is "
                "nearest the chip centre cut aligned as predict cuts it (agegender/faces/recut.py)")

    def prepare(self, threads: int | None = None) -> None:
        """Build the detector in this process, with ``threads`` TensorFlow threads if given (set
        before TensorFlow starts); nothing to do for a detector callable."""
        if self._built is None:
            if threads:
                import tensorflow as tf

                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
            self._built = make_detector(self.detector)

    def __call__(self, chip) -> tuple[np.ndarray, int]:
        if self._built is None:  # not prepared in this process (e.g. just unpickled): build it now
            self.prepare()
        return recut(chip, self._built, self.pad)

    def __getstate__(self):
        return {"detector": self.detector, "pad": self.pad,
                "_built": None if self.in_workers else self._built}
