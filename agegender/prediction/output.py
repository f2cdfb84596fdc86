"""Writing the predictor's records: CSV, JSON Lines or a JSON list, to a file or standard output.

Nothing made is lost and nothing given is overwritten:

- :func:`check_output` refuses, before anything is predicted, an output that is a folder, cannot
  be written, is one of the inputs, or would be read as an input by the next run;
- CSV and JSON Lines grow as records are made: every batch is written and flushed at once, so an
  interrupted run keeps every record made so far; a JSON list is written at the end (also on
  Ctrl-C / SIGTERM) into a temporary file renamed over the output (never half a list);
- ``--resume`` (:func:`resume`) reads what an earlier run wrote and skips those files;
- every record names the model that made it (:class:`ModelStamp`: family and the sha256 of its
  ``.keras`` file), so outputs of different models cannot be mixed up (or resumed into each other).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from agegender.data.listing import is_image_name
from agegender.errors import UserError
from agegender.faces.detector import LANDMARKS

FORMATS = ("csv", "jsonl", "json")
STAMP_FIELDS = ["model_family", "model_sha256"]
CSV_FIELDS = ["file", "face", "box_x", "box_y", "box_w", "box_h", "confidence",
              *(f"{part}_{axis}" for part in LANDMARKS for axis in "xy"),
              "age", "age_low", "age_high", "age_group", "bin", "gender", "gender_probability", "error",
              *STAMP_FIELDS]


class OutputError(UserError):
    """An ``--output`` the predictor will not write to, or an earlier output it cannot resume."""


@dataclass(frozen=True)
class ModelStamp:
    """Which model made a record: its ``family`` and the ``sha256`` (hex) of its ``.keras`` file."""
    family: str
    sha256: str

    @classmethod
    def of(cls, path: str | Path, family: str) -> "ModelStamp":
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return cls(family, digest.hexdigest())

    def fields(self) -> dict:
        return {"model_family": self.family, "model_sha256": self.sha256}


def _one_line(value):
    # an error text with a newline would split a CSV or JSON Lines record in two
    return value.replace("\r", " ").replace("\n", " ") if isinstance(value, str) else value


def json_record(rec: dict, stamp: ModelStamp | None) -> dict:
    """A record as written to JSON (Lines): the record's fields, then the model's."""
    out = {k: _one_line(v) for k, v in rec.items()}
    return {**out, **stamp.fields()} if stamp else out


def csv_row(rec: dict, stamp: ModelStamp | None) -> dict:
    """A record as a CSV row: the box as four columns, each landmark as two, None as empty."""
    row = {k: _one_line(v) for k, v in rec.items() if k not in ("box", "landmarks")}
    row.update(zip(("box_x", "box_y", "box_w", "box_h"), rec["box"] or [None] * 4))
    for part, xy in (rec["landmarks"] or {}).items():
        row.update({f"{part}_x": xy[0], f"{part}_y": xy[1]})
    if stamp:
        row.update(stamp.fields())
    return {k: "" if v is None else v for k, v in row.items()}


class Writer:
    """Records to ``path`` (None: ``stream``, standard output by default) as ``fmt``.

    :meth:`write` takes a batch: CSV and JSON Lines write and flush it at once; a JSON list keeps
    it until :meth:`close`, which writes the whole list atomically. ``earlier`` (from
    :func:`resume`) are records already in the file: a CSV / JSON Lines file is appended to, a
    JSON list rewritten with them first.
    """

    def __init__(self, path: str | Path | None, fmt: str, stamp: ModelStamp | None, *,
                 earlier: list[dict] | None = None, stream: TextIO | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}: one of {', '.join(FORMATS)}")
        self.path, self.fmt, self.stamp = (Path(path) if path else None), fmt, stamp
        self.kept: list[dict] = list(earlier or [])  # a JSON list's records until close()
        self._file: TextIO | None = None
        if fmt == "json":
            self._out = stream if self.path is None else None
            return
        if self.path is None:
            self._out = stream or sys.stdout
            fresh = True
        else:
            fresh = earlier is None or not self.path.exists() or self.path.stat().st_size == 0
            self._file = self._out = open(self.path, "w" if fresh else "a", newline="")
        self._csv = csv.DictWriter(self._out, CSV_FIELDS, lineterminator="\n") if fmt == "csv" else None
        if self._csv and fresh:
            self._csv.writeheader()
            self._out.flush()

    def write(self, records: list[dict]) -> None:
        if self.fmt == "json":
            self.kept.extend(json_record(r, self.stamp) for r in records)
            return
        if self._csv:
            self._csv.writerows(csv_row(r, self.stamp) for r in records)
        else:
            self._out.writelines(json.dumps(json_record(r, self.stamp)) + "\n" for r in records)
        self._out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            text = json.dumps(self.kept, indent=2) + "\n"
            if self.path is None:
                (self._out or sys.stdout).write(text)
            else:
                _replace(self.path, text)
        elif self._file is not None:
            self._file.close()
        else:
            self._out.flush()


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file beside it, renamed over it. The file
    keeps the mode it had (a new one: the umask's, as ``open`` gives), not mkstemp's 0600."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)  # read by setting; put back at once (no thread creates files here)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file on disk (a hard link has its own path but the same
    inode, so comparing resolved paths misses it). False when either is missing or unreadable."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: str | Path, inputs: list[str | Path], input_files: list[Path]) -> Path:
    """Refuse (:class:`OutputError`, one line) an ``output`` that is a folder, one of the inputs
    (``inputs`` as given, ``input_files`` as listed, links resolved, hard links by inode), a name
    an input folder would list as an image, or a place that cannot be written. Creates its
    folder; returns the path."""
    path = Path(output)
    if path.is_dir():
        raise OutputError(f"--output {output}: is a folder; give a file name, e.g. "
                          f"{path / 'predictions.csv'}")
    real = Path(os.path.realpath(path))
    given = [Path(p) for p in inputs] + list(input_files)
    for p in given:
        if not p.is_dir() and (real == Path(os.path.realpath(p)) or _same_file(path, p)):
            raise OutputError(f"--output {output}: is one of the inputs ({p}): refusing to write "
                              "over it")
    for p in given:
        if p.is_dir() and is_image_name(path.name) and Path(os.path.realpath(p)) in real.parents:
            raise OutputError(f"--output {output}: inside the input folder {p} and named like "
                              "an image, so it would be read as an input: write it elsewhere")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            open(path, "a").close()  # opened for appending only: nothing written, nothing cut
        else:
            open(path, "x").close()
            path.unlink()
    except OSError as exc:
        raise OutputError(f"--output {output}: cannot write there ({exc.strerror or exc})") from None
    return path


def resume(path: str | Path, fmt: str, stamp: ModelStamp) -> tuple[set[str], list[dict]]:
    """What an earlier run left in ``path``: (the files it holds records for, its records).

    The records of the last file in a CSV / JSON Lines output are dropped (the file rewritten
    without them, and a torn last line), since a run stopped while writing them may have written
    only some of a photo's faces: that one file is predicted again. Raises :class:`OutputError`
    when the output was written in another format or by another model.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return set(), []
    text = path.read_text()
    try:
        if fmt == "json":
            records = json.loads(text)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise ValueError("not a list of records")
        else:
            lines = text.split("\n")[:-1]  # the part after the last newline is a torn line
            if fmt == "csv":
                header = next(csv.reader([lines[0]])) if lines else []
                if header != CSV_FIELDS:
                    raise ValueError("its header is not this predictor's CSV header")
                records = list(csv.DictReader(io.StringIO("\n".join(lines) + "\n")))
            else:
                records = [json.loads(line) for line in lines]
    except (ValueError, IndexError, csv.Error) as exc:
        raise OutputError(f"--resume: {path} is not a {fmt} output of this predictor ({exc}); "
                          "check --format, or write to another --output") from None
    for rec in records:
        if rec.get("model_sha256") != stamp.sha256:
            raise OutputError(f"--resume: {path} holds records of another model "
                              f"({rec.get('model_family')}, sha256 {str(rec.get('model_sha256'))[:12]}...), "
                              f"not {stamp.family} sha256 {stamp.sha256[:12]}...: write to another --output")
    if fmt != "json" and records:
        last = records[-1]["file"]
        while records and records[-1]["file"] == last:
            records.pop()
        keep = lines[:1 + len(records)] if fmt == "csv" else lines[:len(records)]
        _replace(path, "".join(line + "\n" for line in keep))
    return {r["file"] for r in records}, records
