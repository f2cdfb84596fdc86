"""Who the training data leaves out: training faces per race x gender x life stage, thin cells flagged.

Ingest writes this into ``reports/data_quality.json`` (key ``coverage``) and the model card shows
it under its limitations: where a cell holds few faces, the model has seen few faces like them and
its scores there (often too few test faces to measure) should not be trusted.

Two sets of faces are counted, since which one a model trains on depends on its recipe:
``train`` (the train split: what a validation run, ``final_fit: false``, trains on) and
``train_val`` (train + val: what a final fit, the default recipe, trains on; less any
``calibration_holdout`` share or ``max_train_images`` subsample). A cell is **thin** when it holds
fewer than ``min_faces`` faces (``data.coverage_min_faces`` in params.yaml).
"""
from __future__ import annotations

import pandas as pd

from agegender.data.bins import LIFE_STAGES
from agegender.data.labels import GENDERS, RACE_NAMES, RACES, UNKNOWN_RACE

SETS = {"train": ("train",), "train_val": ("train", "val")}


def cells(labels: pd.DataFrame) -> pd.DataFrame:
    """Faces per (race, gender, life stage) of a labels table (columns ``age``, ``gender``,
    ``race``): one row per possible cell, empty ones included (``n`` 0), in the order race
    (UTKFace's five, then ``Unknown`` when some face has no race), gender, life stage."""
    races = list(RACES.values()) + ([RACE_NAMES[UNKNOWN_RACE]]
                                    if (labels["race"] == UNKNOWN_RACE).any() else [])
    keys = pd.DataFrame({"race": labels["race"].map(RACE_NAMES), "gender": labels["gender"].map(GENDERS),
                         "life_stage": LIFE_STAGES.label_of(labels["age"].to_numpy())})
    counts = keys.value_counts()
    index = pd.MultiIndex.from_product([races, list(GENDERS.values()), LIFE_STAGES.labels()],
                                       names=["race", "gender", "life_stage"])
    return counts.reindex(index, fill_value=0).rename("n").reset_index()


def coverage(labels: pd.DataFrame, min_faces: int) -> dict:
    """The coverage report of a labels table with a ``split`` column: ``min_faces``, and for each
    of :data:`SETS` its ``faces``, ``cells`` (race, gender, life_stage, n, thin) and ``thin``
    (the thin cells as ``"Asian female 60+"``). JSON-ready."""
    out = {"min_faces": int(min_faces), "life_stages": LIFE_STAGES.labels()}
    for name, splits in SETS.items():
        tab = cells(labels[labels["split"].isin(splits)])
        tab["thin"] = tab["n"] < min_faces
        rows = [{"race": r.race, "gender": r.gender, "life_stage": r.life_stage, "n": int(r.n),
                 "thin": bool(r.thin)} for r in tab.itertuples()]
        out[name] = {"faces": int(tab["n"].sum()), "cells": rows,
                     "thin": [f"{r['race']} {r['gender']} {r['life_stage']}" for r in rows if r["thin"]]}
    return out


def markdown(report: dict, which: str) -> str:
    """One set of the report (``train`` or ``train_val``) as a Markdown table: a row per race x
    gender, a column per life stage, thin cells marked ``*``."""
    stages = report["life_stages"]
    lines = ["| race, gender | " + " | ".join(stages) + " |", "|---|" + "---:|" * len(stages)]
    rows: dict[tuple, dict] = {}
    for c in report[which]["cells"]:
        rows.setdefault((c["race"], c["gender"]), {})[c["life_stage"]] = c
    for (race, gender), by_stage in rows.items():
        values = [f"{by_stage[s]['n']}{' *' if by_stage[s]['thin'] else ''}" for s in stages]
        lines.append(f"| {race} {gender} | " + " | ".join(values) + " |")
    return "\n".join(lines)
