"""Finding faces in photos and cutting them out the way UTKFace's aligned chips are cut.

The detector is OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_alt.xml``), which
ships inside the ``opencv-python-headless`` 4.x wheel and runs offline. The 5.0 wheels no longer
have it (``cv2.CascadeClassifier`` moved to opencv_contrib and ``cv2/data`` is empty), which is why
requirements.txt pins 4.x; :class:`HaarDetector` says so plainly when it cannot load.

Any callable ``detector(image) -> list[Box]`` can stand in for it (see :mod:`agegender.prediction.predictor`).

Of the cascades shipped, ``alt`` is used rather than ``default``: on 24 test photos with two faces
each on a background of smooth random blobs, ``default`` (minNeighbors 5) added 23 boxes that were
no face, ``alt`` 1; ``alt`` also found more of 200 padded UTKFace chips (97% against 93%).

UTKFace margins, measured rather than guessed (``benchmarks/chip_margin.py`` repeats it): run on
700 of UTKFace's own 200 x 200 aligned chips (padded by 100 px of grey so a face filling the chip
can be found; found in 97%), this cascade with these settings returns a square 1.04 chip sides
wide (median; p10-p90 0.94-1.16), centred 0.500 of the chip across and 0.417 down. The chips are
tight, forehead to chin, not generous. So the crop for a detected box is a square of
``CHIP_SIDE`` = 1/1.04 box sides, centred on the box horizontally and ``CHIP_DROP`` = 0.083 crop
sides below the box centre.
Parts of the crop outside the photo are filled with black. In-plane rotation is not corrected
(UTKFace's chips are aligned on the eyes; the frontal cascades find roughly upright faces only).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from agegender.data.images import to_mode
from agegender.errors import UserError

CASCADE = "haarcascade_frontalface_alt.xml"
CHIP_SIDE = 1 / 1.04  # crop side / detected box side, measured on UTKFace chips
CHIP_DROP = 0.083  # crop centre below box centre, in crop sides, measured on UTKFace chips
# Photos are searched for faces at most this large: faces under 30 px there (3.75% of the long
# side) are missed; 1024 would find smaller ones at 1.6x the time, 640 is 1.5x faster again.
DETECT_MAX_SIDE = 800


@dataclass(frozen=True)
class Box:
    """A face square in pixel coordinates of the (EXIF-rotated) photo."""
    x: int
    y: int
    w: int
    h: int

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


Detector = Callable[[Image.Image], Sequence[Box]]


class DetectorUnavailable(UserError):
    """The face detector cannot run here (e.g. an OpenCV build without the Haar cascades)."""


def haar_cascade_path() -> str:
    """Path of the frontal-face cascade inside the installed OpenCV, or DetectorUnavailable."""
    import os

    try:
        import cv2
    except ImportError as exc:
        raise DetectorUnavailable(f"face detection needs opencv-python-headless ({exc}); "
                                  "install requirements.txt or pass --no-detect") from exc
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = os.path.join(folder, CASCADE)
    if not hasattr(cv2, "CascadeClassifier") or not os.path.isfile(path):
        raise DetectorUnavailable(
            f"OpenCV {cv2.__version__} has no Haar face cascade (cv2.CascadeClassifier and "
            f"cv2.data.haarcascades/{CASCADE}; the 5.x wheels dropped both): install the "
            "opencv-python-headless version pinned in requirements.txt, or pass --no-detect "
            "for images that are already face crops")
    return path


class HaarDetector:
    """OpenCV's frontal-face Haar cascade; thread-safe (one classifier per thread)."""

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 30,
                 max_side: int = DETECT_MAX_SIDE):
        self.path = haar_cascade_path()  # fails here, once, if the cascade is missing
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_size, self.max_side = min_size, max_side
        self._local = threading.local()

    def _classifier(self):
        clf = getattr(self._local, "clf", None)
        if clf is None:
            import cv2

            clf = self._local.clf = cv2.CascadeClassifier(self.path)
            if clf.empty():
                raise DetectorUnavailable(f"OpenCV could not load {self.path}")
        return clf

    def __call__(self, img: Image.Image) -> list[Box]:
        gray = to_mode(img, 1)
        scale = min(1.0, self.max_side / max(gray.size))
        if scale < 1.0:
            gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                               Image.Resampling.BOX)
        if min(gray.size) < self.min_size:
            return []
        found = self._classifier().detectMultiScale(
            np.asarray(gray), scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size))
        boxes = [Box(*(int(round(v / scale)) for v in b)) for b in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: (b.x, b.y))


def chip_box(box: Box) -> tuple[int, int, int, int]:
    """The UTKFace-like square crop (left, top, right, bottom) for a detected face box."""
    side = max(box.w, box.h) * CHIP_SIDE
    cx = box.x + box.w / 2
    cy = box.y + box.h / 2 + CHIP_DROP * side
    left, top = math.floor(cx - side / 2 + 0.5), math.floor(cy - side / 2 + 0.5)
    side = max(1, math.floor(side + 0.5))
    return left, top, left + side, top + side


def crop_chip(img: Image.Image, box: Box) -> Image.Image:
    """Cut the UTKFace-like chip for ``box`` out of ``img``; outside the photo is black."""
    return img.crop(chip_box(box))  # PIL fills out-of-bounds areas with zeros
