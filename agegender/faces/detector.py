"""What a found face is (:class:`Face`, :class:`Box`) and the interface every detector meets
(:class:`Detector`); detectors are chosen by name in :mod:`agegender.faces.registry`.

Two detectors ship, each in its own module of :mod:`agegender.faces`, both offline (their weights
ship inside wheels that requirements.txt installs):

- ``mtcnn`` (the default, :mod:`~agegender.faces.mtcnn`): boxes, a confidence and
  five landmarks; the chip is cut **aligned** on them.
- ``haar`` (:mod:`~agegender.faces.haar`): OpenCV's frontal-face cascade; boxes
  only, upright faces only; faster.

How a found face becomes a UTKFace-like chip (the square around a box, or the alignment on the
landmarks) is :mod:`agegender.faces.alignment`. How the two compare on faces in photo-like
pictures: ``benchmarks/quality/photo_canvas.py`` and docs/predict.md. Any callable
``detector(image) -> list[Face]`` (or list of :class:`Box`) can stand in for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from agegender.errors import UserError


@dataclass(frozen=True)
class Box:
    """A face square in pixel coordinates of the (EXIF-rotated) photo."""
    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True, eq=False)
class Face:
    """A face found in a photo: its ``box``; with a landmark detector also the detector's
    ``confidence`` (0-1) and five ``landmarks`` (5, 2) as x, y pixels in the order of
    :data:`LANDMARKS`, from which the chip is cut aligned."""
    box: Box
    confidence: float | None = None
    landmarks: np.ndarray | None = None


# Image left and right, as the detector names them: "left_eye" is the eye on the left of the picture.
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
class Detector(Protocol):
    """The interface every detector meets: a PIL image in, its faces out, left to right.
    Thread-safe: the predictor calls it from several threads at once. Any callable of this shape
    (a function, a class of yours) can stand in for the shipped detectors."""

    def __call__(self, image: Image.Image) -> Sequence[Face | Box]: ...


class DetectorUnavailable(UserError):
    """The face detector cannot run here (e.g. an OpenCV build without the Haar cascades)."""


def shrink_to(img: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    """``img`` shrunk (area averaging) so its long side is at most ``max_side`` pixels, and the
    scale applied (1.0 when it was small enough already): detectors search the shrunk photo."""
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BOX)
    return img, scale
