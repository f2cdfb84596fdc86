"""Finding faces in photos and cutting them out the way UTKFace's aligned chips are cut.

Two detectors, both offline (their weights ship inside wheels that requirements.txt installs):

- ``mtcnn`` (the default): MTCNN from the ``mtcnn`` wheel (MIT licence), run on TensorFlow. It
  gives each face a box, a confidence and five landmarks (eyes, nose, mouth corners), and the chip
  is cut **aligned** (:func:`aligned_chip`): turned so the eyes are level, scaled and centred so the
  five landmarks land where MTCNN finds them on UTKFace's own chips (:data:`CHIP_LANDMARKS`,
  measured by ``benchmarks/chip_margin.py --detector mtcnn``). It finds faces turned in the
  picture's plane by up to about 30 degrees, and partly turned away.
- ``haar``: OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_alt.xml``, inside the
  ``opencv-python-headless`` 4.x wheel; the 5.0 wheels dropped ``cv2.CascadeClassifier``, hence
  the pin). Boxes only, upright frontal faces only; faster. The chip is the square
  :func:`chip_box` around the box (``CHIP_SIDE`` and ``CHIP_DROP``, measured by
  ``benchmarks/chip_margin.py --detector haar``: on 700 padded chips the cascade returns a square
  1.04 chip sides wide, centred 0.500 across and 0.417 down); no rotation is corrected.

How the two compare on faces in photo-like pictures (recall, accuracy, speed):
``benchmarks/photo_canvas.py`` and docs/predict.md. Any callable ``detector(image) -> list[Face]``
(or list of :class:`Box`) can stand in for them (see :mod:`agegender.prediction.predictor`).
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
# Haar: photos are searched for faces at most this large: faces under 30 px there (3.75% of the
# long side) are missed; 1024 would find smaller ones at 1.6x the time, 640 is 1.5x faster again.
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


@dataclass(frozen=True, eq=False)
class Face:
    """A face found in a photo: its ``box``; with a landmark detector also the detector's
    ``confidence`` (0-1) and five ``landmarks`` (5, 2) as x, y pixels in the order of
    :data:`LANDMARKS`, from which the chip is cut aligned (:func:`aligned_chip`)."""
    box: Box
    confidence: float | None = None
    landmarks: np.ndarray | None = None


# Image left and right, as the detector names them: "left_eye" is the eye on the left of the picture.
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
Detector = Callable[[Image.Image], Sequence["Face | Box"]]


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

    def __call__(self, img: Image.Image) -> list[Face]:
        gray, scale = shrink_to(to_mode(img, 1), self.max_side)
        if min(gray.size) < self.min_size:
            return []
        found = self._classifier().detectMultiScale(
            np.asarray(gray), scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size))
        boxes = [Box(*(int(round(v / scale)) for v in b)) for b in np.asarray(found).reshape(-1, 4)]
        return [Face(b) for b in sorted(boxes, key=lambda b: (b.x, b.y))]


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


# --- MTCNN: boxes, five landmarks and alignment ---------------------------------------------------

# Photos are searched at most this large: MTCNN finds faces down to 20 px there (3 % of the long
# side: 40 px in a 1280 x 720 photo). Its own min_face_size lever is broken in mtcnn 1.0.0 (any
# value but 20 builds pyramid levels under PNet's 12 px and finds nothing), so shrinking the photo
# is the lever: 640 runs at 1280 x 720 about twice as fast as the full size.
MTCNN_MAX_SIDE = 640
CHIP_PIXELS = 200  # UTKFace chips are 200 x 200: aligned faces are cut at that size, like them
# Where MTCNN puts the five landmarks (LANDMARKS order) on UTKFace's own chips, as fractions of the
# chip side: medians over 700 chips, measured by benchmarks/chip_margin.py --detector mtcnn.
CHIP_LANDMARKS = np.array([[0.2962, 0.2900], [0.6874, 0.2909], [0.4890, 0.5172],
                           [0.3237, 0.6869], [0.6595, 0.6867]])
# The cut is ALIGN_ZOOM times tighter than that template, about the landmarks' centre. Chosen on
# val (benchmarks/photo_canvas.py, 400 val faces in turned pictures, an 8-epoch model): age MAE
# 6.99, 6.66, 6.54, 6.29, 6.33 and gender 87.6, 88.6, 88.6, 89.9, 89.4 % at 0.9, 0.95, 1, 1.05,
# 1.1, against 6.00 / 90.2 % for the chips themselves. Part of it is geometry (the template's
# least-squares fit puts the median chip at 0.986 of its scale), part what the model prefers.
ALIGN_ZOOM = 1.05
ALIGN_TEMPLATE = CHIP_LANDMARKS.mean(0) + (CHIP_LANDMARKS - CHIP_LANDMARKS.mean(0)) * ALIGN_ZOOM


class MtcnnDetector:
    """MTCNN (Zhang et al., 2016) from the ``mtcnn`` wheel (MIT; its three networks' weights ship
    inside the wheel, nothing is downloaded): face boxes, a confidence and five landmarks each.

    Photos are shrunk to at most ``max_side`` pixels (area averaging) to search them; boxes and
    landmarks come back in pixels of the photo given, left to right.
    """

    def __init__(self, max_side: int = MTCNN_MAX_SIDE, min_confidence: float = 0.8):
        try:
            from mtcnn import MTCNN
        except ImportError as exc:
            raise DetectorUnavailable(f"face detection needs the mtcnn package ({exc}); install "
                                      "requirements.txt, or use --detector haar or --no-detect") from exc
        import tensorflow as tf

        self.max_side, self.min_confidence = max_side, min_confidence
        self._mtcnn = MTCNN(device="CPU:0")  # small networks: the CPU is fast enough, GPU or not
        # mtcnn calls its three Keras networks eagerly, once per pyramid level: as graphs (traced
        # once for any input size) the same landmarks came 2.7x faster (6.8 against 2.5 photos/s,
        # 16 pictures of 1280 x 720, both runs in one process on a loaded 2-core AMD EPYC)
        for stage in self._mtcnn.stages:
            stage._model = tf.function(stage._model, reduce_retracing=True)

    def __call__(self, img: Image.Image) -> list[Face]:
        rgb, scale = shrink_to(to_mode(img, 3), self.max_side)
        if min(rgb.size) < 24:  # PNet needs 12 px at the smallest of several pyramid levels
            return []
        found = self._mtcnn.detect_faces(np.asarray(rgb), output_type="numpy", box_format="xyxy",
                                         threshold_onet=self.min_confidence)
        faces = []
        for row in np.asarray(found, dtype=np.float64).reshape(-1, 16):
            x1, y1, x2, y2 = row[1:5] / scale
            box = Box(int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1)))
            # landmarks come as the five x then the five y (mtcnn's parse_landmarks reads them so)
            faces.append(Face(box, float(row[5]), row[6:16].reshape(2, 5).T / scale))
        return sorted(faces, key=lambda f: (f.box.x, f.box.y))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 rotation + uniform scale + shift taking points ``src`` (N, 2) closest to ``dst``
    (N, 2) in least squares (Umeyama, 1991; no reflection)."""
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    s, d = src - src_mean, dst - dst_mean
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


def aligned_chip(img: Image.Image, landmarks: np.ndarray, side: int = CHIP_PIXELS,
                 template: np.ndarray = ALIGN_TEMPLATE) -> Image.Image:
    """Cut a ``side`` x ``side`` chip from ``img`` with the five ``landmarks`` (5, 2) moved where
    ``template`` (5, 2, fractions of the side) puts them: by default where they sit on UTKFace's
    chips (:data:`ALIGN_TEMPLATE`): eyes level, face scaled and centred like theirs. Outside the
    photo, its edge pixels are repeated."""
    import cv2

    matrix = similarity_transform(landmarks, template * side)
    zoom = math.sqrt(abs(np.linalg.det(matrix[:, :2])))  # chip pixels per photo pixel
    # The chip's footprint in the photo, with a margin; a large face is first shrunk with area
    # averaging there, so the warp (bilinear) never has to skip photo pixels.
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]]) @ inverse.T
    left, top = np.floor(corners.min(0)).astype(int) - 2
    right, bottom = np.ceil(corners.max(0)).astype(int) + 2
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, img.width), min(bottom, img.height)
    if right <= left or bottom <= top:  # landmarks entirely outside the photo: nothing to cut
        region, left, top, shrink = img.crop((0, 0, 1, 1)), 0, 0, 1.0
    else:
        region = img.crop((left, top, right, bottom))
        shrink = min(1.0, zoom)
        if shrink < 1.0:
            region = region.resize((max(1, round(region.width * shrink)),
                                    max(1, round(region.height * shrink))), Image.Resampling.BOX)
    local = (landmarks - [left, top]) * [region.width / max(1, right - left),
                                         region.height / max(1, bottom - top)]
    matrix = similarity_transform(local, template * side)
    out = cv2.warpAffine(np.asarray(region), matrix, (side, side), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(out)


def cut_face(img: Image.Image, face: Face | Box) -> Image.Image:
    """The UTKFace-like chip of a found face: aligned on its landmarks when the detector gave
    them, otherwise the square of :func:`chip_box` around its box."""
    if isinstance(face, Face) and face.landmarks is not None:
        return aligned_chip(img, face.landmarks)
    return crop_chip(img, face.box if isinstance(face, Face) else face)


DETECTORS = ("mtcnn", "haar")


def make_detector(name: str = "mtcnn", max_side: int | None = None) -> Detector:
    """The detector called ``name`` (:data:`DETECTORS`), searching photos shrunk to ``max_side``
    pixels (default: the detector's own). Raises DetectorUnavailable when it cannot run here."""
    if name == "mtcnn":
        return MtcnnDetector(max_side or MTCNN_MAX_SIDE)
    if name == "haar":
        return HaarDetector(max_side=max_side or DETECT_MAX_SIDE)
    raise ValueError(f"unknown face detector {name!r}: choose one of {', '.join(DETECTORS)}")
