"""Ingest: file names -> validated labels table with a deterministic, leak-free split.

Every image is either in ``labels.csv`` or in the data-quality report with its reason: nothing is
dropped silently. Reasons: ``malformed_name``, ``out_of_range``, ``unreadable_image``, ``duplicate``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from agegender.data.bins import FIVE_YEAR
from agegender.data.images import ImageDecodeError, decode
from agegender.data.labels import LabelError, parse_filename
from agegender.data.source import SourceError, iter_images

SPLITS = ("train", "val", "test")


def scan(source: str | Path) -> tuple[pd.DataFrame, list[dict]]:
    """Read every image once: parse its name, decode it, hash it.

    Returns the kept rows (file, age, gender, race, hash) sorted by file name, and the skipped
    files as dicts (file, reason, detail). Of exact duplicate contents the first name in sorted
    order is kept.
    """
    rows, skipped = [], []
    for name, data in iter_images(source):
        try:
            labels = parse_filename(name)
            decode(data, name)
        except LabelError as exc:
            skipped.append({"file": name, "reason": exc.reason, "detail": str(exc)})
            continue
        except ImageDecodeError as exc:
            skipped.append({"file": name, "reason": "unreadable_image", "detail": str(exc)})
            continue
        rows.append({"file": name, "age": labels.age, "gender": labels.gender, "race": labels.race,
                     "hash": hashlib.sha256(data).hexdigest()})
    df = pd.DataFrame(rows, columns=["file", "age", "gender", "race", "hash"])
    df = df.sort_values("file", kind="stable").reset_index(drop=True)
    dup = df.duplicated("hash", keep="first")
    first_of = df.drop_duplicates("hash").set_index("hash")["file"]
    for _, row in df[dup].iterrows():
        skipped.append({"file": row.file, "reason": "duplicate",
                        "detail": f"{row.file}: same content (sha256) as {first_of[row.hash]}"})
    return df[~dup].reset_index(drop=True), sorted(skipped, key=lambda s: s["file"])


def stratified_split(df: pd.DataFrame, val_fraction: float, test_fraction: float, seed: int) -> pd.Series:
    """Assign 'train'/'val'/'test' to each row, stratified by five-year age group x gender.

    Rows are shuffled within each stratum (seeded), strata are laid end to end, and every
    1/fraction-th row of that sequence goes to test (then to val among the rest): each split gets
    its share of every stratum to within one row, and exactly round(N * fraction) rows overall,
    even when strata are smaller than 1/fraction. Deterministic for a given seed and set of rows,
    whatever order they arrive in. Returns a Series aligned with ``df.index``.
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"bad split fractions: val={val_fraction}, test={test_fraction}")
    rng = np.random.default_rng(seed)
    by_file = df.sort_values("file", kind="stable")
    strata = FIVE_YEAR.encode(by_file["age"].to_numpy()) * 2 + by_file["gender"].to_numpy()
    sequence = []
    for stratum in np.unique(strata):
        members = by_file.index[strata == stratum].to_numpy()
        sequence.extend(members[rng.permutation(len(members))])
    split = pd.Series("train", index=df.index, dtype=object)
    rest = []
    for i, row in enumerate(sequence):
        if _takes(i, test_fraction):
            split[row] = "test"
        else:
            rest.append(row)
    val_share = val_fraction / (1 - test_fraction)
    for j, row in enumerate(rest):
        if _takes(j, val_share):
            split[row] = "val"
    return split


def _takes(i: int, fraction: float) -> bool:
    """True for evenly spaced positions: round(n * fraction) of the first n, for every n."""
    return int(np.floor((i + 1) * fraction + 0.5)) > int(np.floor(i * fraction + 0.5))


def quality_report(n_seen: int, kept: pd.DataFrame, skipped: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s["reason"]] = counts.get(s["reason"], 0) + 1
    return {
        "images_seen": n_seen,
        "images_kept": len(kept),
        "images_skipped": len(skipped),
        "skipped_by_reason": dict(sorted(counts.items())),
        "split_counts": {s: int((kept["split"] == s).sum()) for s in SPLITS},
        "skipped": skipped,
    }


def ingest(source: str | Path, labels_out: str | Path, report_out: str | Path,
           val_fraction: float, test_fraction: float, seed: int) -> dict:
    """Scan ``source``, split the kept images, write the labels CSV and the data-quality report.

    Returns the report. Raises ``SourceError`` when the source is missing or nothing is usable.
    """
    kept, skipped = scan(source)
    if kept.empty:
        raise SourceError(f"no usable images in {source}: all {len(skipped)} were skipped "
                          f"(see {report_out})")
    kept["split"] = stratified_split(kept, val_fraction, test_fraction, seed)
    report = quality_report(len(kept) + len(skipped), kept, skipped)
    for path in (labels_out, report_out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    kept.to_csv(labels_out, index=False)
    Path(report_out).write_text(json.dumps(report, indent=2) + "\n")
    return report
