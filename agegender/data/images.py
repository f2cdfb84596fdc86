"""Image decoding and the input profiles models are trained on: the one place pixels are made.

Training (preprocess), evaluation and prediction all go through :func:`to_array`, so a model sees
the same pixels whichever way an image reaches it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


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
        Profile("rgb64", 64, 3),  # compact network until it moved to 72 px
        Profile("rgb72", 72, 3),  # compact default network
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
        return ImageOps.exif_transpose(img)  # inside the try: a corrupt EXIF block raises too
    except UnidentifiedImageError as exc:  # its text names an anonymous BytesIO: say it plainly
        raise ImageDecodeError(f"{name}: cannot decode image (not an image in any format PIL "
                               "reads: JPEG, PNG, WebP, GIF, BMP, TIFF, ...)") from exc
    except Exception as exc:  # PIL raises several types for bad data
        raise ImageDecodeError(f"{name}: cannot decode image ({exc})") from exc


def to_array(img: Image.Image, profile: Profile) -> np.ndarray:
    """Convert and resize a PIL image to the profile's uint8 array of shape (size, size, channels).

    Resizing uses PIL's BOX filter, i.e. area averaging: the right filter for shrinking faces.
    """
    img = to_mode(img, profile.channels).resize((profile.size, profile.size), Image.Resampling.BOX)
    arr = np.asarray(img, dtype=np.uint8)
    return arr.reshape(profile.shape)


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode to ``L`` (1 channel) or ``RGB`` (3), keeping the size.

    Palette and alpha images are flattened onto white first, so transparent areas do not turn
    black (their hidden colour values are often black or garbage).
    """
    mode = "L" if channels == 1 else "RGB"
    if img.mode == mode:
        return img
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit greyscale (e.g. some PNGs): PIL's convert would clip everything above 255 to white
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 / 65535.0 if arr.max() > 255 else 1.0
        img = Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8), "L")
        return img if mode == "L" else img.convert(mode)
    if img.mode in ("P", "PA") or "A" in img.mode:
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)  # flatten transparency onto white
    return img.convert(mode)


def load_array(data: bytes, profile: Profile, name: str = "<bytes>") -> np.ndarray:
    """Encoded image bytes -> uint8 array (size, size, channels)."""
    return to_array(decode(data, name), profile)
