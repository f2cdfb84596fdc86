"""The ``haar`` detector: OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_alt.xml``,
inside the ``opencv-python-headless`` 4.x wheel; the 5.0 wheels dropped ``cv2.CascadeClassifier``,
hence the pin). Boxes only, upright frontal faces only; faster than MTCNN. The chip is the square
:func:`~agegender.faces.alignment.chip_box` around the box; no rotation is corrected.
"""
from __future__ import annotations

import os
import threading

import numpy as np
from PIL import Image

from agegender.data.images import to_mode
from agegender.faces.detector import Box, DetectorUnavailable, Face, shrink_to

CASCADE = "haarcascade_frontalface_alt.xml"
# Photos are searched for faces at most this large: faces under 30 px there (3.75% of the
# long side) are missed; 1024 would find smaller ones at 1.6x the time, 640 is 1.5x faster again.
DETECT_MAX_SIDE = 800


def haar_cascade_path() -> str:
    """Path of the frontal-face cascade inside the installed OpenCV, or DetectorUnavailable."""
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

    def __call__(self, img: Image.Image) -> list[Face]:
        gray, scale = shrink_to(to_mode(img, 1), self.max_side)
        if min(gray.size) < self.min_size:
            return []
        found = self._classifier().detectMultiScale(
            np.asarray(gray), scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size))
        boxes = [Box(*(int(round(v / scale)) for v in b)) for b in np.asarray(found).reshape(-1, 4)]
        return [Face(b) for b in sorted(boxes, key=lambda b: (b.x, b.y))]
