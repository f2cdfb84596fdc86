"""Listing image files in folders: the one walk that ingest (a UTKFace folder, labelled sets) and
the predictor share, so all three agree on what an image file is.

The rules, in one place:

- an image file is a name ending in one of :data:`IMAGE_SUFFIXES`, any case;
- hidden files and folders (a name starting with ``.``, below the folder listed) are skipped;
- symlinked folders are followed; one that leads back to a folder already on the way down (a
  loop) is not entered again and is reported in :attr:`Listing.loops`;
- with ``confine=True`` (ingest: a labelled set may not reach outside itself) a file or folder
  whose real path lies outside the listed folder is not read but reported in
  :attr:`Listing.outside`, so the caller can refuse it by name;
- only regular files are images; an image-named FIFO, device or socket (reading one could hang
  or never end) is reported in :attr:`Listing.special`.

Every path comes back as ``root / relative`` (links not resolved) and sorted, so the order is the
same as the sorted ``Path.rglob`` it replaces.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Callable

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def is_image_name(name: str) -> bool:
    """True for a file name ending in an image suffix (:data:`IMAGE_SUFFIXES`, any case)."""
    return name.lower().endswith(IMAGE_SUFFIXES)


def is_hidden(relative: str | PurePath) -> bool:
    """True when any part of ``relative`` (a path below the listed folder) starts with ``.``."""
    return any(part.startswith(".") for part in PurePath(relative).parts)


def within(path: str | Path, root: str | Path) -> bool:
    """True when ``path``, every link resolved, lies inside ``root`` (also resolved)."""
    real, top = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return real == top or top in real.parents


@dataclass
class Listing:
    """What :func:`list_files` found under ``root``; every list sorted."""
    root: Path
    files: list[Path] = field(default_factory=list)  # regular files with a matching name
    special: list[Path] = field(default_factory=list)  # matching names that are no regular file
    loops: list[Path] = field(default_factory=list)  # symlinked folders leading back up
    outside: list[Path] = field(default_factory=list)  # confine=True: links out of root, not read


def list_files(root: str | Path, match: Callable[[str], bool] = is_image_name, *,
               confine: bool = False) -> Listing:
    """Every file under ``root`` (recursively) whose name ``match`` accepts, by the rules above.
    ``root`` must be a folder."""
    root = Path(root)
    top = os.path.realpath(root)
    out = Listing(root)
    on_path: list[tuple[int, int]] = []  # (device, inode) of the folders being walked, top down

    def visit(folder: Path) -> None:
        info = os.stat(folder)
        key = (info.st_dev, info.st_ino)
        if key in on_path:
            out.loops.append(folder)
            return
        on_path.append(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:  # unreadable folder: nothing to list in it (as rglob did)
            entries = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = folder / entry.name
            if confine and entry.is_symlink() and not within(path, top):
                if entry.is_dir() or match(entry.name):
                    out.outside.append(path)
                continue
            try:
                mode = os.stat(path).st_mode  # follows links; a dangling one is skipped
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                visit(path)
            elif match(entry.name):
                (out.files if stat.S_ISREG(mode) else out.special).append(path)
        on_path.pop()

    visit(root)
    for name in ("files", "special", "loops", "outside"):
        getattr(out, name).sort()
    return out


def list_images(root: str | Path, *, confine: bool = False) -> Listing:
    """The image files under ``root`` (see :func:`list_files`)."""
    return list_files(root, is_image_name, confine=confine)
