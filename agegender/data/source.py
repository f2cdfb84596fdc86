"""Reading the raw UTKFace images from either the official ``UTKFace.tar.gz`` or an unpacked folder."""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Iterator

from agegender.errors import UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class SourceError(UserError, FileNotFoundError):
    """The raw data is missing or holds no images."""


def _is_archive(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz", ".tar"))


def check_source(path: str | Path) -> Path:
    """Return ``path`` when it is a folder or tar archive; raise ``SourceError`` saying what was expected."""
    path = Path(path)
    expected = (
        "expected the UTKFace archive (UTKFace.tar.gz) or the unpacked folder of "
        "age_gender_race_date.jpg.chip.jpg images; see README 'Getting the data'"
    )
    if not path.exists():
        raise SourceError(f"raw data not found at {path}: {expected}")
    if not (path.is_dir() or (path.is_file() and _is_archive(path))):
        raise SourceError(f"raw data at {path} is neither a folder nor a .tar.gz archive: {expected}")
    return path


def iter_images(path: str | Path, wanted: set[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield ``(base name, file bytes)`` for every image file in the folder or archive, in name order
    for folders and archive order for archives. With ``wanted``, only those base names are read.

    Raises ``SourceError`` when the source is missing or contains no image files.
    """
    path = check_source(path)
    found = 0
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
        for p in files:
            found += 1
            if wanted is None or p.name in wanted:
                yield p.name, p.read_bytes()
    else:
        with tarfile.open(path) as tar:  # streams; never unpacks to disk
            for member in tar:
                name = Path(member.name).name
                if not member.isfile() or not name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                found += 1
                if wanted is None or name in wanted:
                    yield name, tar.extractfile(member).read()
    if found == 0:
        raise SourceError(f"no image files (*.jpg, *.png) found in {path}")
