"""Light and lens: fixed degradations of face chips, the one definition both benchmarks use.

Not a benchmark itself (``perturb.py`` and ``peers.py`` import it). Each perturbation maps an RGB
uint8 chip (H, W, 3) and a seeded ``numpy.random.Generator`` to a new RGB uint8 array of the same
shape; only ``noise_10`` draws from the generator. Severities are fixed and stated for a 200 px
chip (UTKFace's); the two that depend on scale (blur, shrink) scale with the chip's side, so a
100 px chip is blurred by sigma 1 px. The work is done by PIL (ImageEnhance, ImageFilter, ImageOps,
its JPEG codec and resampling); numpy only adds the cast and the noise, clipped to 0-255.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

REFERENCE_SIDE = 200  # px: the chip side the severities are stated for
Perturbation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _pil(chip: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(chip, dtype=np.uint8), "RGB")


def _scaled(chip: np.ndarray, value: float) -> float:
    """``value`` (px at 200 px) at this chip's side (its shorter one)."""
    return value * min(chip.shape[:2]) / REFERENCE_SIDE


def brightness(factor: float) -> Perturbation:
    """Every pixel times ``factor`` (PIL ImageEnhance.Brightness: a blend with black), clipped."""
    return lambda chip, rng: np.asarray(ImageEnhance.Brightness(_pil(chip)).enhance(factor))


def contrast(factor: float) -> Perturbation:
    """Pixels pulled towards the image's mean grey by ``factor`` (PIL ImageEnhance.Contrast)."""
    return lambda chip, rng: np.asarray(ImageEnhance.Contrast(_pil(chip)).enhance(factor))


def cast(channel: int, shift: int) -> Perturbation:
    """``shift`` added to one channel (0 red, 1 green, 2 blue), clipped: a colour cast."""
    def apply(chip, rng):
        out = chip.astype(np.int16)
        out[..., channel] += shift
        return np.clip(out, 0, 255).astype(np.uint8)
    return apply


def grayscale(chip: np.ndarray, rng=None) -> np.ndarray:
    """PIL's luma (ITU-R 601-2) copied into three equal channels."""
    return np.asarray(ImageOps.grayscale(_pil(chip)).convert("RGB"))


def blur(sigma: float) -> Perturbation:
    """Gaussian blur of standard deviation ``sigma`` px at 200 px (PIL GaussianBlur's radius is sigma)."""
    return lambda chip, rng: np.asarray(_pil(chip).filter(ImageFilter.GaussianBlur(_scaled(chip, sigma))))


def noise(sigma: float) -> Perturbation:
    """Gaussian noise of ``sigma`` (in 0-255 units) added per pixel and channel, rounded and clipped."""
    def apply(chip, rng):
        noisy = chip + rng.normal(0.0, sigma, chip.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return apply


def jpeg(quality: int) -> Perturbation:
    """Encoded by PIL's JPEG codec at ``quality`` (4:2:0 chroma, its default) and decoded again."""
    def apply(chip, rng):
        buffer = io.BytesIO()
        _pil(chip).save(buffer, "JPEG", quality=quality)
        return np.asarray(Image.open(buffer).convert("RGB"))
    return apply


def shrink(side: int) -> Perturbation:
    """Shrunk to ``side`` px at 200 px (area averaging, like a small face on a sensor) and
    upscaled back bicubically (like a viewer or a detector's cut)."""
    def apply(chip, rng):
        img = _pil(chip)
        small = max(1, round(_scaled(chip, side)))
        return np.asarray(img.resize((small, small), Image.Resampling.BOX)
                          .resize(img.size, Image.Resampling.BICUBIC))
    return apply


# name -> perturbation, in the order the benchmarks print them. The casts: red +25 (warm light),
# blue -25 (warm light seen the other way: less blue) and blue +25 (shade, a cool cast).
PERTURBATIONS: dict[str, Perturbation] = {
    "bright_x0.5": brightness(0.5),
    "bright_x1.6": brightness(1.6),
    "contrast_x0.5": contrast(0.5),
    "red_+25": cast(0, 25),
    "blue_-25": cast(2, -25),
    "blue_+25": cast(2, 25),
    "grayscale": grayscale,
    "blur_2px": blur(2.0),
    "noise_10": noise(10.0),
    "jpeg_q25": jpeg(25),
    "shrink_40px": shrink(40),
}


def perturb(chips, name: str, seed: int = 0, start: int = 0) -> list[np.ndarray]:
    """``chips`` (RGB uint8 arrays) under perturbation ``name`` (``"clean"``: unchanged). Chip
    ``i`` of the list draws from its own generator seeded by ``(seed, start + i)``: a split
    perturbed whole or chunk by chunk (``start`` = the chunk's first index) gets the same pixels."""
    if name == "clean":
        return list(chips)
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; known: clean, {', '.join(PERTURBATIONS)}")
    fn = PERTURBATIONS[name]
    return [fn(chip, np.random.default_rng([seed, start + i])) for i, chip in enumerate(chips)]


def parse_names(text: str | None) -> list[str]:
    """``"a,b"`` -> the named perturbations (all of them for None or ``"all"``); ``"clean"`` first
    always, as the baseline every delta is taken against. Raises ``ValueError`` on an unknown name."""
    names = list(PERTURBATIONS) if text in (None, "", "all") else [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in PERTURBATIONS and n != "clean"]
    if unknown:
        raise ValueError(f"unknown perturbation(s) {', '.join(unknown)}; known: {', '.join(PERTURBATIONS)}")
    return ["clean"] + [n for n in names if n != "clean"]
