"""What the predictor is given, turned into items it can read: paths (files, folders), encoded
bytes, PIL images and uint8 arrays.

Folders are listed by :mod:`agegender.data.listing` (the same rule as ingest: image suffixes,
hidden files skipped, symlinked folders followed with loops detected). A file is read only when it
is a regular file of at most ``max_bytes``: a FIFO, device or socket (reading one could block or
never end) and a file above the cap each become a per-file error, never a hang.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageOps

from agegender.data.images import ImageDecodeError, decode
from agegender.data.listing import IMAGE_SUFFIXES, list_images

MAX_FILE_MB = 100  # default cap on a file's size (--max-file-mb): photos are a few MB, scans tens
SPECIAL = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
           stat.S_IFSOCK: "a socket"}


@dataclass
class Item:
    """One input: ``name`` (its path as given or found, or ``<image N>`` ...), ``source`` (Path,
    bytes, PIL image or array; None with an ``error``)."""
    name: str
    source: object
    error: str | None = None


def expand(images: Iterable) -> list[Item]:
    """Inputs -> items in order. Paths to folders become their image files, recursively and
    sorted; a missing path becomes an error item, a symlinked folder leading back up (a loop)
    one too. Items pass through unchanged (a list expanded once can be given again)."""
    if isinstance(images, (str, os.PathLike, bytes, Image.Image, np.ndarray)):
        images = [images]
    items = []
    for i, obj in enumerate(images):
        if isinstance(obj, Item):
            items.append(obj)
        elif isinstance(obj, (str, os.PathLike)):
            items.extend(_expand_path(Path(obj)))
        elif isinstance(obj, bytes):
            items.append(Item(f"<bytes {i}>", obj))
        elif isinstance(obj, Image.Image):
            items.append(Item(getattr(obj, "filename", "") or f"<image {i}>", obj))
        elif isinstance(obj, np.ndarray):
            items.append(Item(f"<array {i}>", obj))
        else:
            raise TypeError(f"cannot predict on {type(obj).__name__}: give paths, bytes, "
                            "PIL images or uint8 arrays")
    return items


def _expand_path(path: Path) -> list[Item]:
    if path.is_dir():
        listing = list_images(path)
        found = sorted(listing.files + listing.special)  # special files: refused when read
        items = [Item(str(p), p) for p in found]
        items += [Item(str(p), None, "symlinked folder leads back to a folder above it (a loop): "
                                     "not entered again") for p in listing.loops]
        if not found:
            items.append(Item(str(path), None, "no image files in this folder (looked for "
                                               f"{', '.join(sorted(IMAGE_SUFFIXES))})"))
        return items
    if path.exists():
        return [Item(str(path), path)]
    return [Item(str(path), None, "no such file or folder")]


def read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ImageDecodeError (without the name)
    for anything else. Checked before it is opened (a socket cannot be), opened non-blocking (a
    FIFO swapped in meanwhile cannot hang the open) and checked again on what was opened."""
    try:
        _check_regular(os.stat(path))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ImageDecodeError(f"cannot read file ({exc.strerror or exc})") from exc
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        _check_regular(info)
        if info.st_size > max_bytes:
            raise ImageDecodeError(f"file too large ({info.st_size / 2**20:.1f} MB, above the "
                                   f"{max_bytes / 2**20:g} MB cap; raise it with --max-file-mb)")
        try:
            data = f.read(max_bytes + 1)  # a file growing while read still stops at the cap
        except OSError as exc:
            raise ImageDecodeError(f"cannot read file ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise ImageDecodeError(f"file too large (above the {max_bytes / 2**20:g} MB cap; raise it "
                               "with --max-file-mb)")
    return data


def _check_regular(info: os.stat_result) -> None:
    kind = stat.S_IFMT(info.st_mode)
    if kind != stat.S_IFREG:
        raise ImageDecodeError(f"not a regular file ({SPECIAL.get(kind, 'a special file')}): not read")


def open_item(item: Item, max_bytes: int) -> Image.Image:
    """The decoded, upright picture of an item. Raises ImageDecodeError saying what is wrong."""
    src = item.source
    if isinstance(src, Path):
        return decode(read_file(src, max_bytes), item.name)
    if isinstance(src, bytes):
        return decode(src, item.name)
    if isinstance(src, np.ndarray):
        channels = src.shape[2] if src.ndim == 3 else 1
        if src.dtype != np.uint8 or src.ndim not in (2, 3) or channels not in (1, 3, 4):
            raise ImageDecodeError(f"expected a uint8 array (H, W), (H, W, 1|3|4), got "
                                   f"{src.dtype} {src.shape}")
        return Image.fromarray(src[:, :, 0] if src.ndim == 3 and src.shape[2] == 1 else src)
    return ImageOps.exif_transpose(src)  # no-op unless it still carries an EXIF orientation
