"""Ingest: file names -> validated labels table with a deterministic, leak-free split.

Every image is either in ``labels.csv`` or in the data-quality report with its reason: nothing is
dropped silently. Reasons: ``malformed_name``, ``out_of_range``, ``unreadable_image``, ``duplicate``,
and for labelled sets of your own (``data.extra``, :mod:`agegender.data.labelled`) also
``bad_label``, ``missing_file``, ``unlabelled`` and ``outside_set`` (one
:class:`~agegender.data.skips.Skip` each). UTKFace images are named by their base name in
``labels.csv``, images of a labelled set by their path relative to ``data.extra``. The report also
counts the training faces per race x gender x life stage (:mod:`agegender.data.coverage`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from agegender.data import labelled
from agegender.data.coverage import coverage
from agegender.data.images import ImageDecodeError, decode
from agegender.data.labels import LabelError, parse_filename
from agegender.data.skips import Skip, count_reasons
from agegender.data.source import SourceError, iter_images
from agegender.data.splits import SPLITS, stratified_split



def scan(source: str | Path, extra: str | Path | None = None) -> tuple[pd.DataFrame, list[Skip]]:
    """Read every image once: parse its name (or its labels CSV row), decode it, hash it.

    ``source`` is UTKFace (archive or folder); ``extra``, when given, a folder of labelled sets.
    Returns the kept rows (file, age, gender, race, hash) sorted by file name, and the skipped
    files (:class:`Skip`, sorted by file). Of exact duplicate contents the UTKFace image is kept
    over a labelled set's, and otherwise the first name in sorted order.
    """
    rows, skipped = [], []
    for name, data in iter_images(source):
        try:
            labels = parse_filename(name)
            decode(data, name)
        except LabelError as exc:
            skipped.append(Skip(name, exc.reason, str(exc)))
            continue
        except ImageDecodeError as exc:
            skipped.append(Skip(name, "unreadable_image", str(exc)))
            continue
        rows.append({"file": name, "age": labels.age, "gender": labels.gender, "race": labels.race,
                     "hash": hashlib.sha256(data).hexdigest(), "extra": False})
    if extra is not None:
        utkface = {r["file"] for r in rows}
        found, skipped_extra = labelled.scan(extra)
        skipped += skipped_extra
        for row in found:
            if row.key in utkface:  # only a labels.csv at the top of data.extra can clash
                skipped.append(Skip(row.key, "duplicate", f"{row.key}: same file name as a UTKFace image"))
                continue
            rows.append({"file": row.key, "age": row.labels.age, "gender": row.labels.gender,
                         "race": row.labels.race, "hash": hashlib.sha256(row.data).hexdigest(),
                         "extra": True})
    df = pd.DataFrame(rows, columns=["file", "age", "gender", "race", "hash", "extra"])
    df = df.sort_values(["extra", "file"], kind="stable").reset_index(drop=True)  # UTKFace first
    dup = df.duplicated("hash", keep="first")
    first_of = df.drop_duplicates("hash").set_index("hash")["file"]
    for _, row in df[dup].iterrows():
        skipped.append(Skip(row.file, "duplicate",
                            f"{row.file}: same content (sha256) as {first_of[row.hash]}"))
    kept = df[~dup].sort_values("file", kind="stable").drop(columns="extra").reset_index(drop=True)
    return kept, sorted(skipped, key=lambda s: s.file)


def quality_report(n_seen: int, kept: pd.DataFrame, skipped: list[Skip],
                   extra: str | Path | None = None, coverage_min_faces: int | None = None) -> dict:
    """Counts, reasons and the skipped files. With labelled sets (``extra``) it also says how many
    kept images came from UTKFace and from each set (``kept_by_source``, by top folder). With
    ``coverage_min_faces`` it holds the ``coverage`` report (:mod:`agegender.data.coverage`:
    training faces per race x gender x life stage, cells under that many faces flagged thin)."""
    report = {
        "images_seen": n_seen,
        "images_kept": len(kept),
        "images_skipped": len(skipped),
        "skipped_by_reason": count_reasons(skipped),
        "split_counts": {s: int((kept["split"] == s).sum()) for s in SPLITS},
    }
    if extra is not None:
        origin = kept["file"].map(lambda f: f"{extra}/{f.split('/')[0]}" if "/" in f else "UTKFace")
        report["kept_by_source"] = {k: int(v) for k, v in sorted(origin.value_counts().items())}
    if coverage_min_faces is not None:
        report["coverage"] = coverage(kept, coverage_min_faces)
    report["skipped"] = [s.as_dict() for s in skipped]
    return report


def ingest(source: str | Path, labels_out: str | Path, report_out: str | Path,
           val_fraction: float, test_fraction: float, seed: int,
           extra: str | Path | None = None, coverage_min_faces: int | None = None) -> dict:
    """Scan ``source`` (and the labelled sets under ``extra``), split the kept images, write the
    labels CSV and the data-quality report (with the coverage report when ``coverage_min_faces``
    is given: the ingest stage passes ``data.coverage_min_faces``).

    Returns the report. Raises ``SourceError`` when the source is missing or nothing is usable.
    """
    kept, skipped = scan(source, extra)
    if kept.empty:
        raise SourceError(f"no usable images in {source}: all {len(skipped)} were skipped "
                          f"(see {report_out})")
    kept["split"] = stratified_split(kept, val_fraction, test_fraction, seed)
    report = quality_report(len(kept) + len(skipped), kept, skipped, extra, coverage_min_faces)
    for path in (labels_out, report_out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    kept.to_csv(labels_out, index=False)
    Path(report_out).write_text(json.dumps(report, indent=2) + "\n")
    return report
