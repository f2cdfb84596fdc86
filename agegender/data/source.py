"""Reading the raw UTKFace images from either the official ``UTKFace.tar.gz`` or an unpacked folder."""
from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Iterator

from agegender.data.listing import IMAGE_SUFFIXES, is_hidden, is_image_name, list_images
from agegender.errors import UserError


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
    What an image file is (suffix, hidden files, links) is :mod:`agegender.data.listing`'s rule,
    for archive members too.

    Raises ``SourceError`` when the source is missing or contains no image files.
    """
    path = check_source(path)
    found = 0
    if path.is_dir():
        for p in list_images(path).files:
            found += 1
            if wanted is None or p.name in wanted:
                yield p.name, p.read_bytes()
    else:
        with tarfile.open(path) as tar:  # streams; never unpacks to disk
            for member in tar:
                name = Path(member.name).name
                if not member.isfile() or not is_image_name(name) or is_hidden(member.name):
                    continue
                found += 1
                if wanted is None or name in wanted:
                    yield name, tar.extractfile(member).read()
    if found == 0:
        raise SourceError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found in {path}")
