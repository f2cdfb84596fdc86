"""Scores by life stage and gender, and the tables the face benchmarks print (text or Markdown).

Not a benchmark itself (the face benchmarks of ``benchmarks/quality/`` import it). The scores of
a set of faces are :func:`agegender.evaluation.breakdown.group_scores`' (MAE in years, CS@5,
gender accuracy), the same as the evaluate stage's; the groups are
:data:`agegender.data.bins.LIFE_STAGES` of the true age (0-2, 3-12, 13-19, 20-39, 40-59, 60+) and
the true gender, and each life stage x gender *cell*, where the signed mean age error (predicted
minus true: negative reads too young) shows a lean that the MAE hides. A face without a
prediction (no face found, or an error) is *missed*: counted, never scored.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from agegender.data.bins import LIFE_STAGES
from agegender.data.labels import GENDERS
from agegender.evaluation.breakdown import group_scores

GROUPS = [*LIFE_STAGES.labels(), *GENDERS.values()]  # "0-2" ... "60+", "male", "female"
SCORES = {"mae": "MAE", "cs5": "CS@5", "gender_accuracy": "gender"}
CELLS = [f"{stage} {gender}" for stage in LIFE_STAGES.labels() for gender in ("female", "male")]


def summarise(labels: pd.DataFrame, pred_age, pred_female) -> dict:
    """Scores of one predictor on one set. ``labels``: one row per image (``age`` in years,
    ``gender`` 0 male / 1 female); ``pred_age`` (N,) years and ``pred_female`` (N,) bool or 0/1,
    NaN (or None) where the image has no prediction.

    Returns ``{"images", "missed", "n", "mae", "cs5", "gender_accuracy", "mean_error", "groups":
    {group: {the same keys}}, "cells": {"<life stage> <gender>": {the same keys}}}``, NaN scores
    where nothing was scored; ``mean_error`` is the signed mean of predicted minus true age."""
    age = pd.to_numeric(pd.Series(list(pred_age), dtype=object), errors="coerce").to_numpy(float)
    female = pd.to_numeric(pd.Series(list(pred_female), dtype=object), errors="coerce").to_numpy(float)
    if not len(age) == len(female) == len(labels):
        raise ValueError(f"{len(labels)} label rows but {len(age)} ages and {len(female)} genders")
    df = pd.DataFrame({"age": labels["age"].to_numpy(), "gender": labels["gender"].to_numpy(),
                       "pred_age": age, "gender_prob": female})  # a 0/1 call: accuracy as given
    found = ~(np.isnan(age) | np.isnan(female))
    stage = np.asarray(LIFE_STAGES.label_of(df["age"].to_numpy()), dtype=object)
    gender = df["gender"].map(GENDERS).to_numpy(dtype=object)

    def scores(mask) -> dict:
        scored = df[mask & found]
        return {"images": int(mask.sum()), "missed": int((mask & ~found).sum()),
                **group_scores(scored),
                "mean_error": float((scored["pred_age"] - scored["age"]).mean()) if len(scored) else np.nan}

    out = scores(np.ones(len(df), bool))
    out["groups"] = {g: scores((stage == g) | (gender == g)) for g in GROUPS}
    cell = stage + " " + gender
    out["cells"] = {c: scores(cell == c) for c in CELLS}
    return out


def worst_cell(summary: dict, min_faces: int = 1) -> tuple[str, float] | None:
    """The life stage x gender cell of the largest signed mean age error in years (either way),
    among cells with at least ``min_faces`` scored faces: ``(cell, mean error)``, or None."""
    cells = [(c, s["mean_error"]) for c, s in summary["cells"].items()
             if s["n"] >= min_faces and not np.isnan(s["mean_error"])]
    return max(cells, key=lambda c: abs(c[1])) if cells else None


def overall_table(entries: list[tuple[str, dict, dict | None, float | None]]):
    """Headers and rows of the headline table. ``entries``: ``(label, summary, base summary or
    None, images per second or None)``; with a base, each score is followed by its delta."""
    with_base = any(base is not None for _, _, base, _ in entries)
    with_speed = any(speed is not None for *_, speed in entries)
    headers = ["", "images", "missed", "MAE", *(["vs clean"] if with_base else []), "CS@5",
               *(["vs clean"] if with_base else []), "gender", *(["vs clean"] if with_base else []),
               *(["images/s"] if with_speed else [])]
    rows = []
    for label, s, base, speed in entries:
        row = [label, str(s["images"]), str(s["missed"])]
        for key in SCORES:
            row.append(_score(key, s[key]))
            if with_base:
                row.append(_delta(key, s[key], base[key]) if base else "")
        if with_speed:
            row.append("" if speed is None else f"{speed:.1f}")
        rows.append(row)
    return headers, rows


def group_table(entries: list[tuple[str, dict, dict | None]], key: str):
    """Headers and rows of one score by group: ``entries`` ``(label, summary, base or None)``;
    a cell is the score, then its delta against the base's same group where there is a base."""
    headers = ["", *[f"{g} (n={entries[0][1]['groups'][g]['images']})" for g in GROUPS]] if entries else []
    rows = []
    for label, s, base in entries:
        cells = []
        for g in GROUPS:
            value = s["groups"][g][key]
            cell = _score(key, value)
            if base is not None:
                cell += f" ({_delta(key, value, base['groups'][g][key])})"
            cells.append(cell)
        rows.append([label, *cells])
    return headers, rows


def cell_table(entries: list[tuple[str, dict]]):
    """Headers and rows of the signed mean age error and gender accuracy by life stage x gender:
    one row per cell (its faces in brackets, from the first entry), one column per ``(label,
    summary)``, each cell "signed error / gender accuracy" ("+1.20 / 95.0%")."""
    headers = ["life stage, gender", *[label for label, _ in entries]]
    rows = []
    for c in CELLS:
        n = entries[0][1]["cells"][c]["images"] if entries else 0
        rows.append([f"{c} (n={n})", *[f"{_signed(s['cells'][c]['mean_error'])} / "
                                       f"{_score('gender_accuracy', s['cells'][c]['gender_accuracy'])}"
                                       for _, s in entries]])
    return headers, rows


def render(headers: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    """A table as aligned text (first column left, the others right) or as Markdown."""
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|---" + "|---:" * (len(headers) - 1) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(headers), *[fmt(r) for r in rows]])


def _score(key: str, value: float) -> str:
    if value is None or np.isnan(value):
        return "-"
    return f"{value:.2f}" if key == "mae" else f"{100 * value:.1f}%"


def json_ready(value):
    """Scores ready for strict JSON: NumPy scalars to Python, NaN to None, through dicts and lists."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):  # NumPy's int64, float32, bool_ ...
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def _signed(value: float) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:+.2f}"


def _delta(key: str, value: float, base: float) -> str:
    if value is None or base is None or np.isnan(value) or np.isnan(base):
        return "-"
    return f"{value - base:+.2f}" if key == "mae" else f"{100 * (value - base):+.1f}pt"
