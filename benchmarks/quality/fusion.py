"""Fusion of two trained models by their outputs: age and P(female) averaged with weights chosen on val.

    python -m benchmarks.quality.fusion --models A.keras B.keras --data-dirs DIR_A DIR_B
        [--labels data/interim/labels.csv] [--split val] [--weights WA,WG]
        [--external PATH] [--markdown] [--json-out FILE]

Each model scores the split from its own cached arrays (its profile's; the same label rows), as
the evaluate stage does (flip averaging). Without ``--weights`` every weight w of model A from 0
to 1 in steps of 0.1 is tried, for age (w A + (1 - w) B) and for gender (the same on P(female))
separately, and the best of each on the split is printed: choose on ``--split val``. With
``--weights WA,WG`` those are applied and the split scored (``--split test`` to report), and with
``--external`` a labelled photo set too: each model through its predictor with detection (MTCNN,
the aligned cut its profile takes), the largest face of each photo, fused with those weights; the
tables by life stage and gender as ``peers.py`` prints them.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common.grouped import group_table, json_ready, overall_table, render, summarise

STEPS = np.round(np.linspace(0, 1, 11), 1)


def fused(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    return w * a + (1 - w) * b


def split_outputs(model_path: str, data_dir: str, labels: pd.DataFrame, split: str) -> pd.DataFrame:
    """The evaluate stage's predictions table of one model on a cached split."""
    from agegender.data.arrays import load_split
    from agegender.evaluation.scoring import evaluate_model
    from agegender.serving.saved import load_model

    model, info = load_model(model_path)
    images, _ = load_split(data_dir, split)
    df, _, _ = evaluate_model(model, info.age_output, images, labels, 256, True, 30, info.gender_calibration)
    return df


def sweep(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """MAE and gender accuracy of every weight of model A."""
    rows = []
    for w in STEPS:
        age = fused(a["pred_age"].to_numpy(), b["pred_age"].to_numpy(), w)
        p = fused(a["gender_prob"].to_numpy(), b["gender_prob"].to_numpy(), w)
        rows.append({"w": w, "age_mae": float(np.abs(age - a["age"]).mean()),
                     "gender_accuracy": float(((p >= 0.5) == (a["gender"] == 1)).mean())})
    return pd.DataFrame(rows)


def photo_outputs(model_path: str, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Age and P(female) of the largest face of each photo (NaN where none is found), as
    ``peers.py`` reads ours: :class:`~benchmarks.common.predictors.Ours` with detection, then ``pick``."""
    from agegender.prediction.predictor import Predictor
    from benchmarks.common.predictors import Ours, pick

    faces, _, _ = Ours(Predictor(model_path))(paths, "detect")
    picked = [pick(found, None) for found in faces]
    return (np.array([np.nan if f is None else f["age"] for f in picked], float),
            np.array([np.nan if f is None else f["p_female"] for f in picked], float))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs=2, required=True, metavar=("A", "B"))
    parser.add_argument("--data-dirs", nargs=2, required=True, metavar=("DIR_A", "DIR_B"))
    parser.add_argument("--labels", default="data/interim/labels.csv")
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--weights", default=None, help="WA,WG: model A's weight for age, for gender")
    parser.add_argument("--external", type=Path, default=None, help="a labelled photo set (with --weights)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    if args.external and not args.weights:
        parser.error("--external scores the fusion with --weights chosen on val")
    weights = None
    if args.weights:
        try:
            weights = tuple(float(v) for v in args.weights.split(","))
        except ValueError:
            weights = ()
        if len(weights) != 2 or not all(0 <= w <= 1 for w in weights):
            parser.error(f"--weights {args.weights!r}: two numbers in [0, 1], A's weight for age and for gender")

    labels = pd.read_csv(args.labels)
    labels = labels[labels["split"] == args.split].reset_index(drop=True)
    a, b = (split_outputs(m, d, labels, args.split) for m, d in zip(args.models, args.data_dirs))
    if not a[["file", "age", "gender"]].equals(b[["file", "age", "gender"]]):
        raise SystemExit(f"the two models' {args.split} rows differ: give each model's own arrays of "
                         "the same split (--data-dirs) and one labels file")
    out = {"split": args.split, "models": args.models}
    print(f"{args.split} ({len(labels)} faces), model A = {args.models[0]}, B = {args.models[1]}; "
          "w = A's weight")
    if weights is None:  # choosing: the sweep, on val
        table = sweep(a, b)
        out["sweep"] = table.to_dict("records")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        best_age, best_gender = table.loc[table["age_mae"].idxmin()], table.loc[table["gender_accuracy"].idxmax()]
        print(f"best on {args.split}: age w = {best_age['w']} (MAE {best_age['age_mae']:.2f}), "
              f"gender w = {best_gender['w']} ({100 * best_gender['gender_accuracy']:.1f} %)")
    else:
        wa, wg = weights
        out["weights"] = {"age": wa, "gender": wg}
        age = fused(a["pred_age"].to_numpy(), b["pred_age"].to_numpy(), wa)
        p = fused(a["gender_prob"].to_numpy(), b["gender_prob"].to_numpy(), wg)
        out["fused"] = {"age_mae": float(np.abs(age - a["age"]).mean()),
                        "gender_accuracy": float(((p >= 0.5) == (a["gender"] == 1)).mean())}
        print(f"fused with the given weights (age {wa}, gender {wg}): MAE {out['fused']['age_mae']:.2f}, "
              f"gender {100 * out['fused']['gender_accuracy']:.1f} %")
        if args.external:
            from benchmarks.common.bench_sets import external_set

            with tempfile.TemporaryDirectory(prefix="fusion-") as tmp:
                bench = external_set(args.external, Path(tmp), None, 0)
                paths = [p for chunk, _ in bench.chunks() for p in chunk]
                (age_a, fem_a), (age_b, fem_b) = (photo_outputs(m, paths) for m in args.models)
            entries = []
            for name, age, fem in (("A", age_a, fem_a), ("B", age_b, fem_b),
                                   (f"fusion {wa}/{wg}", fused(age_a, age_b, wa), fused(fem_a, fem_b, wg))):
                female = np.where(np.isnan(fem), np.nan, (fem >= 0.5).astype(float))
                entries.append((name, summarise(bench.labels, list(age), list(female)), None, None))
            print(f"\n== {bench.name}: {len(bench.labels)} photos, detect path ==")
            print(render(*overall_table(entries), args.markdown))
            for key, title in (("mae", "age MAE (years)"), ("gender_accuracy", "gender accuracy")):
                print(f"\n{title} by life stage (true age) and gender")
                print(render(*group_table([e[:3] for e in entries], key), args.markdown))
            out["external"] = {e[0]: e[1] for e in entries}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(json_ready(out), indent=1, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
