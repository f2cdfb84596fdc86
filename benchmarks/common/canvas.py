"""Faces in photo-like pictures: a chip turned, scaled and pasted at a random place on a smooth
random background, every draw from the caller's generator.

Not a benchmark itself (``photo_canvas.py`` and ``peers.py``' ``canvases`` set import it): the same
seed and size give both the same pictures.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def background(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Smooth colour blobs with a little grain: no face, some edges, like an out-of-focus room."""
    low = rng.integers(0, 256, (max(2, h // 80), max(2, w // 80), 3), dtype=np.uint8)
    img = Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(6))
    grain = rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img) + grain, 0, 255).astype(np.uint8))


def place(chip: np.ndarray, rng: np.random.Generator, w: int, h: int):
    """``chip`` turned, scaled and pasted into a ``w`` x ``h`` picture.
    Returns (picture RGB uint8, centre x, centre y, chip side in pixels, angle in degrees)."""
    side = int(rng.uniform(0.25, 0.60) * min(w, h))
    angle = float(rng.uniform(-30, 30))
    face = Image.fromarray(chip).resize((side, side), Image.Resampling.BICUBIC)
    turned = face.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    mask = Image.new("L", face.size, 255).rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    x = int(rng.integers(0, w - turned.width + 1))
    y = int(rng.integers(0, h - turned.height + 1))
    canvas = background(rng, w, h)
    canvas.paste(turned, (x, y), mask)
    return np.asarray(canvas), x + turned.width / 2, y + turned.height / 2, side, angle
