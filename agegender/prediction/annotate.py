"""``agegender-predict --annotate DIR``: each photo written again with its faces drawn on it.

**Where each picture goes.** The picture of an input file ``F`` is written to ``DIR / F``
relative to the *base* of the run: the deepest folder holding every input given, where an input
folder counts as itself and an input file as the folder it is in. So one folder given
(``photos/``) is mirrored inside ``DIR`` (``photos/a/x.jpg`` -> ``DIR/a/x.jpg``), one file lands
at ``DIR/x.jpg``, and several inputs keep the part of their paths that tells them apart
(``a/x.jpg b/x.jpg`` -> ``DIR/a/x.jpg``, ``DIR/b/x.jpg``): two different files can never get one
name. Paths are made absolute but links are not resolved, so a file found through a symlinked
folder lands under that folder's name, as the records name it.

**What is drawn.** The upright picture (EXIF rotation applied, as the boxes are given), in RGB,
at its own size; per face its box and a label ``age gender probability`` (``34 F 91%``), orange
for female, blue for male. A picture where no face was found is written too, with ``no face
found`` in its top-left corner, so the folder holds every photo the run read; a file that could
not be decoded gives no picture (its error is in the records). Same name and format as the input
(JPEG at quality 95; a name PIL cannot save under gets ``.png`` appended).

**Nothing overwritten.** :func:`check_annotate` refuses, before anything is predicted, a ``DIR``
that is a file, is or is inside an input folder (the next run would read the drawings as
photos), a destination that is an input file, and a destination that exists already (the
predictor has no ``--force``; remove them or choose another folder), except with ``--resume``,
which continues a run into the same outputs. Files are written to a temporary name and renamed.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from agegender.data.images import to_mode
from agegender.errors import UserError
from agegender.prediction.inputs import Item, open_item
from agegender.prediction.predictor import NO_FACE

FEMALE, MALE, NOTE = (230, 120, 20), (30, 120, 230), (200, 30, 30)  # RGB
JPEG_QUALITY = 95
NO_FACE_NOTE = "no face found"


class AnnotateError(UserError):
    """An ``--annotate`` folder the predictor will not write to."""


def base_folder(roots: list[str | Path]) -> Path:
    """The deepest folder holding every root (a folder counts as itself, a file as its folder),
    absolute, links not resolved."""
    anchors = [os.path.abspath(r) if Path(r).is_dir() else os.path.dirname(os.path.abspath(r))
               for r in roots]
    return Path(os.path.commonpath(anchors))


def destinations(items: list[Item], roots: list[str | Path], out_dir: str | Path) -> dict[str, Path]:
    """``{item name: where its picture goes}`` for the items read from files (see the module's
    docstring for the rule); names PIL cannot save under get ``.png`` appended."""
    base, out = base_folder(roots), Path(out_dir)
    saveable = Image.registered_extensions()
    dest = {}
    for it in items:
        if not isinstance(it.source, Path):
            continue
        path = out / os.path.relpath(os.path.abspath(it.source), base)
        if saveable.get(path.suffix.lower()) not in Image.SAVE:
            path = path.with_name(path.name + ".png")
        dest[it.name] = path
    return dest


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_annotate(out_dir: str | Path, roots: list[str | Path], items: list[Item],
                   resume: bool = False) -> dict[str, Path]:
    """Refuse (:class:`AnnotateError`, one line) an ``--annotate`` folder that would overwrite or
    feed back into the inputs, or whose destinations exist already (unless ``resume``). Creates
    the folder; returns :func:`destinations`."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise AnnotateError(f"--annotate {out_dir}: is a file; give a folder to write pictures into")
    real = Path(os.path.realpath(out))
    for r in roots:
        if Path(r).is_dir() and (real == Path(os.path.realpath(r)) or Path(os.path.realpath(r)) in real.parents):
            raise AnnotateError(f"--annotate {out_dir}: is or is inside the input folder {r}, so the "
                                "next run would read the drawings as photos: write them elsewhere")
    dest = destinations(items, roots, out)
    sources = [it.source for it in items if isinstance(it.source, Path)]
    existing = []
    for name, path in dest.items():
        hit = next((s for s in sources if _same(path, s)), None)
        if hit is not None:
            raise AnnotateError(f"--annotate {out_dir}: would write {name}'s picture over the input "
                                f"{hit}: choose another folder")
        if path.exists() and not resume:
            existing.append(path)
    if existing:
        raise AnnotateError(f"--annotate {out_dir}: {len(existing)} of the pictures exist already "
                            f"(e.g. {existing[0]}); refusing to overwrite them: remove them or "
                            "choose another folder (--resume continues a run into them)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise AnnotateError(f"--annotate {out_dir}: cannot write there ({exc.strerror or exc})") from None
    return dest


def _font(size: int):
    try:
        return ImageFont.load_default(size)  # Pillow's own scalable font (FreeType)
    except (TypeError, OSError):  # pragma: no cover - Pillow built without FreeType
        return ImageFont.load_default()


def label(rec: dict) -> str:
    """``34 (28-41) F 91%``: the age in years with its interval when the model gives one (the 10th
    to 90th percentile of its age distribution), the gender's initial and its probability."""
    low, high = rec.get("age_low"), rec.get("age_high")
    interval = f" ({low:.0f}-{high:.0f})" if low not in (None, "") and high not in (None, "") else ""
    return f"{rec['age']:.0f}{interval} {rec['gender'][0].upper()} {100 * rec['gender_probability']:.0f}%"


def draw(img: Image.Image, records: list[dict]) -> Image.Image:
    """An RGB copy of ``img`` with each face record's box and :func:`label` drawn; with no face
    record, ``no face found`` in the top-left corner. ``records``: the predictor's records of
    this picture (box ``[x, y, w, h]`` in its pixels)."""
    out = to_mode(img, 3).copy()
    pen = ImageDraw.Draw(out)
    side = min(out.size)
    width = max(1, round(side / 200))
    font = _font(max(10, round(side / 25)))
    faces = [r for r in records if r.get("box") and not r.get("error")]
    if not faces:
        _text(pen, (width, width), NO_FACE_NOTE, font, NOTE)
    for rec in faces:
        x, y, w, h = rec["box"]
        colour = FEMALE if rec["gender"] == "female" else MALE
        pen.rectangle([x, y, x + w - 1, y + h - 1], outline=colour, width=width)
        left, top, right, bottom = pen.textbbox((0, 0), label(rec), font=font)
        above = y - (bottom - top) - 2 * width
        _text(pen, (x, above if above >= 0 else y + width), label(rec), font, colour)
    return out


def _text(pen: ImageDraw.ImageDraw, xy, text: str, font, colour) -> None:
    """``text`` in white on a box of ``colour`` at ``xy`` (its top-left corner)."""
    left, top, right, bottom = pen.textbbox(xy, text, font=font)
    pad = max(1, (bottom - top) // 6)
    pen.rectangle([left - pad, top - pad, right + pad, bottom + pad], fill=colour)
    pen.text(xy, text, font=font, fill=(255, 255, 255))


def save(img: Image.Image, path: Path, replace: bool = False) -> None:
    """Write ``img`` to ``path`` in the format its name says, through a temporary file renamed
    into place; an existing ``path`` is replaced only when ``replace`` (else FileExistsError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = Image.registered_extensions()[path.suffix.lower()]
    options = {"quality": JPEG_QUALITY} if fmt == "JPEG" else {}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # what open() gives a new file, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            img.save(f, format=fmt, **options)
        if not replace:  # claim the name first: fails if a file appeared there since the check
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # read by setting; put back at once
    os.umask(mask)
    return mask


class Annotator:
    """Writes the pictures of the predictor's record batches to their :func:`destinations`
    (every record of a file comes in one batch). ``replace``: existing pictures may be replaced
    (``--resume``)."""

    def __init__(self, items: list[Item], dest: dict[str, Path], replace: bool = False,
                 max_bytes: int = 100 * 2**20):
        self.items = {it.name: it for it in items}
        self.dest, self.replace, self.max_bytes = dest, replace, max_bytes
        self.written: set[Path] = set()

    def write(self, batch: list[dict]) -> list[str]:
        """Write the picture of every file in ``batch``; returns one line per picture that could
        not be written (``FILE: reason``), the others are written regardless."""
        by_file: dict[str, list[dict]] = {}
        for rec in batch:
            by_file.setdefault(rec["file"], []).append(rec)
        problems = []
        for name, records in by_file.items():
            path = self.dest.get(name)
            if path is None or path in self.written:  # not a file, or given twice
                continue
            if any(r["error"] for r in records) and not _no_face(records):
                continue  # not decoded: nothing to draw on (its error is in the records)
            try:
                img = open_item(self.items[name], self.max_bytes)
                save(draw(img, records), path, self.replace)
                self.written.add(path)
            except Exception as exc:  # one picture must not stop the run
                problems.append(f"{name}: picture not written to {path} ({type(exc).__name__}: {exc})")
        return problems


def _no_face(records: list[dict]) -> bool:
    return len(records) == 1 and records[0]["error"] == NO_FACE
