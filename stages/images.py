"""Image decoding and the input profiles models are trained on: the one place pixels are made.

Training (preprocess), evaluation and prediction all go through :func:`to_array`, so a model sees
the same pixels whichever way an image reaches it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps


@dataclass(frozen=True)
class Profile:
    name: str
    size: int  # square side in pixels
    channels: int  # 1 = grayscale, 3 = RGB

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.channels)


PROFILES = {
    p.name: p
    for p in (
        Profile("gray70", 70, 1),  # seed 004 sigmoid / ReLU CNNs
        Profile("rgb70", 70, 3),  # seed 004 VGG19 (70 x 70 RGB)
        Profile("gray128", 128, 1),  # seed 003 ten-range CNN
        Profile("rgb64", 64, 3),  # compact default network
        Profile("rgb128", 128, 3),  # seed 001 models A and B (VGG16), seed 002
        Profile("rgb224", 224, 3),  # seed 000 (12 custom bins)
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown image profile {name!r}; known: {sorted(PROFILES)}") from None


class ImageDecodeError(ValueError):
    """An image file that cannot be decoded (not an image, truncated, empty)."""


def decode(data: bytes, name: str = "<bytes>") -> Image.Image:
    """Decode encoded image bytes fully (so truncation is caught here) with EXIF orientation applied.

    Raises ``ImageDecodeError`` naming ``name`` and the problem.
    """
    if not data:
        raise ImageDecodeError(f"{name}: empty file (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:  # PIL raises several types for bad data
        raise ImageDecodeError(f"{name}: cannot decode image ({exc})") from exc
    return ImageOps.exif_transpose(img)


def to_array(img: Image.Image, profile: Profile) -> np.ndarray:
    """Convert and resize a PIL image to the profile's uint8 array of shape (size, size, channels).

    Resizing uses PIL's BOX filter, i.e. area averaging: the right filter for shrinking faces.
    """
    mode = "L" if profile.channels == 1 else "RGB"
    if img.mode in ("P", "PA") or "A" in img.mode:
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)  # flatten transparency onto white
    img = img.convert(mode).resize((profile.size, profile.size), Image.Resampling.BOX)
    arr = np.asarray(img, dtype=np.uint8)
    return arr.reshape(profile.shape)


def load_array(data: bytes, profile: Profile, name: str = "<bytes>") -> np.ndarray:
    """Encoded image bytes -> uint8 array (size, size, channels)."""
    return to_array(decode(data, name), profile)
