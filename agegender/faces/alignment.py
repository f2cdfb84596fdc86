"""Cutting a found face out the way UTKFace's aligned chips are cut: the alignment geometry.

- A face with landmarks (``mtcnn``) is cut **aligned** (:func:`aligned_chip`): turned so the eyes
  are level, scaled and centred so the five landmarks land where MTCNN finds them on UTKFace's own
  chips (:data:`CHIP_LANDMARKS`, measured by ``benchmarks/quality/chip_margin.py --detector mtcnn``).
- A box alone (``haar``) gives the square :func:`chip_box` around it (``CHIP_SIDE`` and
  ``CHIP_DROP``, measured by ``benchmarks/quality/chip_margin.py --detector haar``: on 700 padded chips the
  cascade returns a square 1.04 chip sides wide, centred 0.500 across and 0.417 down).
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from agegender.faces.detector import Box, Face

CHIP_SIDE = 1 / 1.04  # crop side / detected box side, measured on UTKFace chips
CHIP_DROP = 0.083  # crop centre below box centre, in crop sides, measured on UTKFace chips
CHIP_PIXELS = 200  # UTKFace chips are 200 x 200: aligned faces are cut at that size, like them
# Where MTCNN puts the five landmarks (LANDMARKS order) on UTKFace's own chips, as fractions of the
# chip side: medians over 700 chips, measured by benchmarks/quality/chip_margin.py --detector mtcnn.
CHIP_LANDMARKS = np.array([[0.2962, 0.2900], [0.6874, 0.2909], [0.4890, 0.5172],
                           [0.3237, 0.6869], [0.6595, 0.6867]])
# The cut is ALIGN_ZOOM times tighter than that template, about the landmarks' centre. Chosen on
# val (benchmarks/quality/photo_canvas.py, 400 val faces in turned pictures, an 8-epoch model): age MAE
# 6.99, 6.66, 6.54, 6.29, 6.33 and gender 87.6, 88.6, 88.6, 89.9, 89.4 % at 0.9, 0.95, 1, 1.05,
# 1.1, against 6.00 / 90.2 % for the chips themselves. Part of it is geometry (the template's
# least-squares fit puts the median chip at 0.986 of its scale), part what the model prefers.
ALIGN_ZOOM = 1.05
ALIGN_TEMPLATE = CHIP_LANDMARKS.mean(0) + (CHIP_LANDMARKS - CHIP_LANDMARKS.mean(0)) * ALIGN_ZOOM


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
