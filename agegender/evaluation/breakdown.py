"""Fairness breakdown: how age error and gender accuracy differ across race, gender and age.

The one place group-wise scores are computed. The evaluate stage writes them (headline gaps into
``reports/metrics.json``, full tables into ``reports/breakdown.json`` and ``reports/breakdown.csv``);
the plot stage draws them and the model card prints them.

Definitions (every figure comes with the number of faces it is computed on):

- A **breakdown** splits the test faces by one attribute: ``race`` (UTKFace codes 0-4: White,
  Black, Asian, Indian, Others; plus ``Unknown`` when faces of a labelled set without race are
  present), ``gender`` (male, female), ``age_group`` (the 20 five-year groups
  of the *true* age, ``0-4`` ... ``95+``), ``life_stage`` (the six life stages of the true age,
  :data:`~agegender.data.bins.LIFE_STAGES`: 0-2, 3-12, 13-19, 20-39, 40-59, 60+),
  ``race_x_gender`` (the 10 combinations) or ``life_stage_x_gender`` (the 12 combinations).
- Per group: ``n`` faces, ``mae`` (mean absolute age error, years), ``cs5`` (share of faces whose
  age is predicted within 5 years) and ``gender_accuracy``; the scores come from
  :mod:`agegender.evaluation.metrics`, the same functions as the overall scores.
- Per breakdown and score: ``gap`` = max - min over the groups and ``std`` = the population
  standard deviation (ddof=0) of the group scores, each group counting once whatever its size.
  Only groups with at least ``min_group_size`` faces enter the gap and std (a group of three faces
  would make the gap mostly noise); the others stay in the table with ``in_spread`` false. When
  fewer than two groups qualify there is nothing to compare: gap and std are ``None``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from agegender.data.bins import FIVE_YEAR, LIFE_STAGES
from agegender.data.labels import GENDERS, RACE_NAMES, RACES, UNKNOWN_RACE
from agegender.evaluation.metrics import age_metrics, gender_metrics

SCORES = ("mae", "cs5", "gender_accuracy")
# For each score, whether higher is better (names the best and worst group).
HIGHER_IS_BETTER = {"mae": False, "cs5": True, "gender_accuracy": True}
BREAKDOWNS = ("race", "gender", "age_group", "life_stage", "race_x_gender", "life_stage_x_gender")
TITLES = {"race": "Race", "gender": "Gender", "age_group": "Age group (true age, years)",
          "life_stage": "Life stage (true age, years)", "race_x_gender": "Race x gender",
          "life_stage_x_gender": "Life stage x gender"}


def group_labels(df: pd.DataFrame, breakdown: str) -> tuple[pd.Series, list[str]]:
    """The group of each face under ``breakdown`` and the list of all possible groups, in order.

    ``df`` needs columns ``age``, ``gender`` (0 male, 1 female) and ``race`` (0-4, or -1 unknown:
    an ``Unknown`` group then follows the five, only when some face has it).
    Returns (labels aligned with ``df.index``, ordered group names).
    """
    races = list(RACES.values())
    if (df["race"] == UNKNOWN_RACE).any():
        races.append(RACE_NAMES[UNKNOWN_RACE])
    if breakdown == "race":
        return df["race"].map(RACE_NAMES), races
    if breakdown == "gender":
        return df["gender"].map(GENDERS), list(GENDERS.values())
    if breakdown == "age_group":
        return (pd.Series(FIVE_YEAR.label_of(df["age"].to_numpy()), index=df.index, dtype=object),
                FIVE_YEAR.labels())
    if breakdown == "life_stage":
        return (pd.Series(LIFE_STAGES.label_of(df["age"].to_numpy()), index=df.index, dtype=object),
                LIFE_STAGES.labels())
    if breakdown == "race_x_gender":
        labels = df["race"].map(RACE_NAMES) + " " + df["gender"].map(GENDERS)
        return labels, [f"{r} {g}" for r in races for g in GENDERS.values()]
    if breakdown == "life_stage_x_gender":
        stage, _ = group_labels(df, "life_stage")
        labels = stage + " " + df["gender"].map(GENDERS)
        return labels, [f"{s} {g}" for s in LIFE_STAGES.labels() for g in GENDERS.values()]
    raise ValueError(f"unknown breakdown {breakdown!r}; known: {BREAKDOWNS}")


def group_scores(df: pd.DataFrame) -> dict:
    """``n``, ``mae``, ``cs5`` and ``gender_accuracy`` of a set of faces (NaN scores when empty).

    ``df`` needs ``age``, ``pred_age``, ``gender`` and ``gender_prob`` (P(female))."""
    if len(df) == 0:
        return {"n": 0, **{s: float("nan") for s in SCORES}}
    age = age_metrics(df["age"], df["pred_age"])
    gender = gender_metrics(df["gender"], df["gender_prob"])
    return {"n": int(len(df)), "mae": age["mae"], "cs5": age["cs5"],
            "gender_accuracy": gender["accuracy"]}


def table(df: pd.DataFrame, breakdown: str, min_group_size: int = 1) -> pd.DataFrame:
    """One row per possible group (empty ones included, n = 0): group, n, the scores, in_spread."""
    labels, order = group_labels(df, breakdown)
    rows = [{"group": g, **group_scores(df[labels == g])} for g in order]
    out = pd.DataFrame(rows, columns=["group", "n", *SCORES])
    out["in_spread"] = out["n"] >= max(int(min_group_size), 1)
    return out


def spread(tab: pd.DataFrame) -> dict:
    """Gap (max - min), std (ddof=0), and the best and worst group of each score, over the rows
    of ``tab`` with ``in_spread``; plus how many groups that is and the smallest group's size."""
    used = tab[tab["in_spread"]]
    out = {"groups": int(len(used)), "min_n": int(used["n"].min()) if len(used) else 0}
    for score in SCORES:
        values = used[score].to_numpy(dtype=float)
        if len(values) < 2:
            out[score] = {"gap": None, "std": None, "best": None, "worst": None}
            continue
        best, worst = ((values.argmax(), values.argmin()) if HIGHER_IS_BETTER[score]
                       else (values.argmin(), values.argmax()))
        out[score] = {"gap": float(values.max() - values.min()), "std": float(values.std(ddof=0)),
                      "best": str(used["group"].iloc[best]), "worst": str(used["group"].iloc[worst])}
    return out


def breakdown(df: pd.DataFrame, min_group_size: int = 1) -> dict:
    """Every breakdown of a predictions table: ``{name: {"groups": [rows], "spread": {...}}}``,
    plus ``min_group_size``. JSON-ready (NaN scores of empty groups become None)."""
    out = {"min_group_size": int(min_group_size)}
    for name in BREAKDOWNS:
        tab = table(df, name, min_group_size)
        rows = [{k: _clean(v) for k, v in row.items()} for row in tab.to_dict("records")]
        out[name] = {"groups": rows, "spread": spread(tab)}
    return out


def headline(full: dict) -> dict:
    """The numbers for ``reports/metrics.json``: ``{breakdown: {score_gap, score_std, ...}}``."""
    out = {}
    for name in BREAKDOWNS:
        s = full[name]["spread"]
        out[name] = {f"{score}_{kind}": s[score][kind] for score in SCORES for kind in ("gap", "std")}
    return out


def long_table(full: dict) -> pd.DataFrame:
    """All breakdowns in one long table (breakdown, group, n, scores, in_spread) for CSV."""
    frames = [pd.DataFrame(full[name]["groups"]).assign(breakdown=name) for name in BREAKDOWNS]
    df = pd.concat(frames, ignore_index=True)
    return df[["breakdown", "group", "n", *SCORES, "in_spread"]]


def markdown(full: dict, name: str) -> str:
    """A breakdown as a Markdown table with counts, followed by its gap and std line."""
    lines = [f"| {TITLES[name]} | n | MAE (years) | CS@5 | gender accuracy |",
             "|---|---:|---:|---:|---:|"]
    for row in full[name]["groups"]:
        mark = "" if row["in_spread"] else " *"
        lines.append(f"| {row['group']}{mark} | {row['n']} | {_fmt(row['mae'], 2)} | "
                     f"{_fmt(row['cs5'], 3)} | {_fmt(row['gender_accuracy'], 3)} |")
    s = full[name]["spread"]
    parts = [f"{label} gap {_fmt(s[score]['gap'], 3)} (std {_fmt(s[score]['std'], 3)}, "
             f"worst: {s[score]['worst'] or '-'})"
             for score, label in (("mae", "MAE"), ("cs5", "CS@5"), ("gender_accuracy", "gender accuracy"))]
    lines.append("")
    lines.append(f"Groups with at least {full['min_group_size']} faces: {s['groups']}. "
                 + "; ".join(parts) + ".")
    if not all(row["in_spread"] for row in full[name]["groups"]):
        lines.append(f"\\* fewer than {full['min_group_size']} faces: shown, but left out of gap and std.")
    return "\n".join(lines)


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _clean(value):
    """NumPy scalars -> Python, NaN -> None (valid JSON)."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return value
