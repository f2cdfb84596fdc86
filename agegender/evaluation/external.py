"""Scoring the trained model on a labelled set of your own, the way a user's pictures are predicted.

The set is a folder with ``labels.csv`` (:mod:`agegender.data.labelled`: the same checks as ingest;
bad rows are listed with their reason, never scored). Its images go through the
:class:`~agegender.prediction.predictor.Predictor` with face finding (``detect``) or as crops, so
the numbers say what a user of ``agegender-predict`` gets, detector misses included. Of several
faces found in one image the largest is scored. The scores come from
:func:`agegender.evaluation.scoring.score`, the same as the test split's.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from agegender.data import labelled
from agegender.data.skips import count_reasons
from agegender.data.source import SourceError
from agegender.evaluation.scoring import rounded, score

COLUMNS = ["file", "age", "gender", "race", "faces", "pred_age", "gender_prob", "pred_gender", "error"]


def _largest_face(records: list[dict]) -> dict:
    return max(records, key=lambda r: (r["box"][2] * r["box"][3]) if r.get("box") else 0)


def evaluate_folder(predictor, folder: str | Path, detect: bool = True) -> tuple[pd.DataFrame, dict]:
    """Predict every usable image of the labelled set ``folder`` with ``predictor`` (a
    :class:`~agegender.prediction.predictor.Predictor`). Returns (one row per usable image, metrics).

    Metrics: ``age`` and ``gender`` scores over the images where a face was found, and ``images``:
    listed (rows of labels.csv plus unlisted images), ``usable`` (valid rows whose image decodes),
    ``scored`` (a face found), ``no_face`` (none found), ``failed`` (the predictor gave an error) and
    ``skipped`` (not usable, by reason; the rows are in the report's ``skipped``).
    """
    folder = Path(folder)
    rows, skipped = labelled.scan(folder)
    if not rows:
        raise SourceError(f"no usable labelled image in {folder}: {len(skipped)} skipped "
                                   f"({count_reasons(skipped) or 'no labels.csv found'})")
    by_name = {str(row.path): row for row in rows}
    found: dict[str, list[dict]] = {}
    for record in predictor.iter_records([row.path for row in rows], detect=detect):
        found.setdefault(record["file"], []).append(record)
    table = []
    for name, row in by_name.items():
        records = found.get(name, [])
        faces = [r for r in records if not r.get("error")]
        out = {"file": row.key, "age": row.labels.age, "gender": row.labels.gender,
               "race": row.labels.race, "faces": len(faces)}
        if faces:
            best = _largest_face(faces)
            p = float(best["gender_probability"])
            out.update(pred_age=best["age"], gender_prob=p if best["gender"] == "female" else 1 - p)
        else:
            out["error"] = next((r["error"] for r in records if r.get("error")), "no prediction")
        table.append(out)
    df = pd.DataFrame(table, columns=COLUMNS)
    scored = df[df["faces"] > 0].copy()
    scored[["pred_age", "gender_prob"]] = scored[["pred_age", "gender_prob"]].astype(float)
    scored["pred_gender"] = (scored["gender_prob"] >= 0.5).astype(int)
    df.loc[scored.index, "pred_gender"] = scored["pred_gender"]
    errors = df.loc[df["faces"] == 0, "error"].astype(str)
    no_face = int(errors.str.lower().str.startswith("no face").sum())
    metrics = score(scored, None) if len(scored) else {}
    metrics["images"] = {
        "listed": len(rows) + len(skipped), "usable": len(rows), "scored": len(scored),
        "no_face": no_face, "failed": int(len(errors) - no_face), "skipped": len(skipped),
        "skipped_by_reason": count_reasons(skipped),
    }
    metrics["face_found_rate"] = len(scored) / len(rows)
    metrics["detect"] = bool(detect)
    return df, {"metrics": rounded(metrics), "skipped": [s.as_dict() for s in skipped]}


def write(df: pd.DataFrame, result: dict, metrics_out: str | Path, predictions_out: str | Path,
          skipped_out: str | Path) -> None:
    for path in (metrics_out, predictions_out, skipped_out):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_out).write_text(json.dumps(result["metrics"], indent=2) + "\n")
    df.to_csv(predictions_out, index=False)
    Path(skipped_out).write_text(json.dumps(result["skipped"], indent=2) + "\n")
