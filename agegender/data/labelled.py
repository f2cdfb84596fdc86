"""Labelled folders: your own faces with a labels CSV, beside (or instead of) UTKFace's file names.

A labelled set is a folder holding ``labels.csv`` and the images it names::

    file,age,gender,race          # race is optional: a missing column or empty cell = unknown (-1)
    img/0001.jpg,34,female,       # file: path relative to the CSV's folder
    img/0002.jpg,61,0,2           # gender: 0/1, male/female or m/f; race: 0-4 or its UTKFace name

Used two ways: every ``labels.csv`` under ``data.extra`` (params.yaml) adds a set to the training
data (ingest and preprocess), and ``external.source`` is one set that the ``evaluate_external``
stage scores the trained model on (external/dvc.yaml).

Rows are checked like UTKFace's names and never repaired beyond the plain conversions above (an
age of 23.6 becomes 24: ages are whole years everywhere). A bad row, a listed file that is missing
or does not decode, an image in the folder that no row names, and a link in a set that resolves
outside the set's folder are each skipped with a reason (a :class:`~agegender.data.skips.Skip`);
which files are images, and how links and hidden files are treated, is :mod:`agegender.data.listing`'s rule;
a CSV that cannot be read or lacks a required column stops the run with an error naming it.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from agegender.data.images import ImageDecodeError, decode
from agegender.data.labels import AGE_RANGE, RACES, UNKNOWN_RACE, Labels, LabelError
from agegender.data.listing import list_files, list_images, within
from agegender.data.skips import Skip
from agegender.data.source import SourceError

LABELS_CSV = "labels.csv"
REQUIRED = ("file", "age", "gender")
GENDER_WORDS = {"0": 0, "1": 1, "male": 0, "female": 1, "m": 0, "f": 1}
RACE_WORDS = {name.lower(): code for code, name in RACES.items()}


@dataclass(frozen=True)
class Row:
    """One usable row: ``key`` (path relative to the root that was scanned, ``/``-separated),
    its labels, the image file and its bytes."""
    key: str
    labels: Labels
    path: Path
    data: bytes


def parse_row(row: dict, where: str) -> Labels:
    """Labels of one CSV row (values as strings). Raises ``LabelError`` (``bad_label`` for a value
    that is not a label, ``out_of_range`` for an age outside 0-116) naming ``where``."""
    text = (row.get("age") or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise LabelError("bad_label", f"{where}: age {text!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelError("bad_label", f"{where}: age {text!r} is not a number")
    age = int(math.floor(value + 0.5))
    if not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        raise LabelError("out_of_range", f"{where}: age {text} outside {AGE_RANGE[0]}-{AGE_RANGE[1]}")
    text = (row.get("gender") or "").strip().lower()
    if text not in GENDER_WORDS:
        raise LabelError("bad_label", f"{where}: gender {text!r} is not 0/1, male/female or m/f")
    gender = GENDER_WORDS[text]
    text = (row.get("race") or "").strip().lower()
    if text == "":
        race = UNKNOWN_RACE
    elif text in RACE_WORDS:
        race = RACE_WORDS[text]
    elif text.lstrip("-").isdigit() and int(text) in (*RACES, UNKNOWN_RACE):
        race = int(text)
    else:
        raise LabelError("bad_label", f"{where}: race {text!r} is not 0-4, a UTKFace race name "
                                      f"({', '.join(RACES.values())}) or empty (unknown)")
    return Labels(age, gender, race)


def read_csv(csv_path: Path) -> list[dict]:
    """The rows of a labels CSV as dicts of strings. Raises ``SourceError`` naming the file when
    it cannot be read or lacks a required column."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in columns]
            if missing:
                raise SourceError(f"{csv_path}: missing column(s) {', '.join(missing)}; expected a "
                                  f"header file,age,gender[,race] (found: {', '.join(columns) or 'nothing'})")
            return [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    except SourceError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{csv_path}: cannot read the labels CSV ({exc})") from None


def find_sets(root: str | Path) -> list[Path]:
    """Every ``labels.csv`` under ``root`` (sorted; hidden folders skipped, symlinked folders
    followed: a set may live on another disk). Raises ``SourceError`` when ``root`` is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"labelled data folder not found: {root} (a folder of data sets, each a "
                          f"folder with {LABELS_CSV} and its images; see docs/data.md)")
    return list_files(root, lambda name: name == LABELS_CSV).files


def scan(root: str | Path) -> tuple[list[Row], list[Skip]]:
    """Read every labelled set under ``root``: (usable rows in CSV order, set by set; skipped
    files). Images under ``root`` that no CSV names are skipped as ``unlabelled``; a file listed
    twice is a ``duplicate`` the second time; a file of a set that is a link resolving outside the
    set's folder is refused as ``outside_set``, listed or not (a set cannot pull in other files)."""
    root = Path(root)
    rows, skipped, listed = [], [], set()
    sets = find_sets(root)
    for csv_path in sets:
        folder = csv_path.parent
        for line, row in enumerate(read_csv(csv_path), start=2):  # line 1 is the header
            name = (row.get("file") or "").strip()
            where = f"{csv_path.relative_to(root).as_posix()} line {line} ({name or 'no file name'})"
            key = _key(folder / name, root) if name else None
            if key is None or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                skipped.append(Skip(name or f"{csv_path.name}:{line}", "missing_file",
                                    f"{where}: file must name an image inside {folder}"))
                continue
            if key in listed:
                skipped.append(Skip(key, "duplicate", f"{where}: {key} is listed more than once"))
                continue
            listed.add(key)
            try:
                labels = parse_row(row, where)
            except LabelError as exc:
                skipped.append(Skip(key, exc.reason, str(exc)))
                continue
            path = folder / name
            if not within(path, folder):
                skipped.append(_outside(key, path, folder, where))
                continue
            if not path.is_file():
                problem = "not a regular file" if path.exists() else "listed but not found"
                skipped.append(Skip(key, "missing_file", f"{where}: {problem} ({path})"))
                continue
            data = path.read_bytes()
            try:
                decode(data, key)
            except ImageDecodeError as exc:
                skipped.append(Skip(key, "unreadable_image", f"{where}: {exc}"))
                continue
            rows.append(Row(key, labels, path, data))
    folders = sorted((p.parent for p in sets), key=lambda f: len(f.parts), reverse=True)
    for path in list_images(root).files:
        key = _key(path, root)
        if key in listed:
            continue
        folder = next((f for f in folders if f == path.parent or f in path.parents), None)
        if folder is not None and not within(path, folder):
            skipped.append(_outside(key, path, folder, key))
        else:
            skipped.append(Skip(key, "unlabelled", f"{key}: an image that no {LABELS_CSV} row names"))
    return rows, skipped


def _outside(key: str, path: Path, folder: Path, where: str) -> Skip:
    return Skip(key, "outside_set", f"{where}: a link to {os.path.realpath(path)}, outside the "
                                    f"set's folder {folder}: refused (copy the file into the set)")


def iter_listed(root: str | Path, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(key, bytes)`` of the images under ``root`` whose keys are in ``wanted``."""
    root = Path(root)
    for key in sorted(wanted):
        path = root / key
        if path.is_file():
            yield key, path.read_bytes()


def _key(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None
