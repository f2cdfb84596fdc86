"""Would a calibration of the predicted age, fitted on val, straighten the lean by age? A
regression network pulls its ages towards the training mean (the old read younger, the young
older); a map from predicted to true age fitted on UTKFace's val undoes what of that is UTKFace's.

    python -m benchmarks.quality.age_calibration [--model models/model.keras] [--data-dir data/processed]
        [--labels data/interim/labels.csv] [--folds 2] [--seed 0] [--markdown]

Predicts val and test as the evaluate stage does (mirrored test-time augmentation), then for each
map (``linear``: true = a + b * predicted, least squares; ``isotonic``: scikit-learn's monotone
fit, clipped to 0-116) prints the age MAE and signed mean error on val, *cross-fitted* (``--folds``
parts of val, each mapped by a fit on the others: a score the fit never saw), and on test with the
map fitted on all of val; then test's signed mean error and gender accuracy by life stage x gender
for each. Choose on the val column; test is reported, not chosen on.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold

from agegender.data.arrays import load_split
from benchmarks.common.chips import machine
from benchmarks.common.grouped import cell_table, render, summarise

MAX_AGE = 116  # UTKFace's oldest label: the isotonic map never reads past it


class Linear:
    """true = a + b * predicted by least squares (undoes a shrinkage towards the mean), clipped to
    0-116 as the isotonic map is: a slope above 1 would read the youngest faces below 0."""

    def fit(self, predicted, true):
        self.b, self.a = np.polyfit(np.asarray(predicted, float), np.asarray(true, float), 1)
        return self

    def predict(self, predicted):
        return np.clip(self.a + self.b * np.asarray(predicted, float), 0, MAX_AGE)


MAPS = {"linear": Linear,
        "isotonic": lambda: IsotonicRegression(y_min=0, y_max=MAX_AGE, out_of_bounds="clip")}


def cross_fit(make, predicted: np.ndarray, true: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each face of ``predicted`` mapped by a fit on the other folds' faces only."""
    out = np.empty(len(predicted), dtype=float)
    for fit_rows, map_rows in KFold(folds, shuffle=True, random_state=seed).split(predicted):
        out[map_rows] = make().fit(predicted[fit_rows], true[fit_rows]).predict(predicted[map_rows])
    return out


def read_labels(path: str, folds: int, parser: argparse.ArgumentParser) -> pd.DataFrame:
    """The label rows (ingest's CSV), refused in one line, before any model loads, when they
    cannot say anything: no file, no ``split`` column, or fewer than 2 val faces per fold (each
    fit needs two points at least) or no test face."""
    if not Path(path).is_file():
        parser.error(f"--labels {path}: no such file (ingest writes it: dvc repro ingest)")
    labels = pd.read_csv(path)
    if not {"split", "age", "gender"} <= set(labels.columns):
        parser.error(f"--labels {path}: not ingest's labels (needs split, age and gender columns)")
    val, test = (int((labels["split"] == s).sum()) for s in ("val", "test"))
    if val < 2 * folds or test == 0:
        parser.error(f"--labels {path}: {val} val and {test} test faces; {folds} folds need "
                     f"{2 * folds} val faces at least, and test one")
    return labels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/model.keras")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--labels", default="data/interim/labels.csv")
    parser.add_argument("--folds", type=int, default=2, help="cross-fitting folds of val (>= 2)")
    parser.add_argument("--seed", type=int, default=0, help="how val is cut into folds")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be 2 or more: a map scored on the faces it was fitted on says nothing")
    labels = read_labels(args.labels, args.folds, parser)

    from agegender.evaluation.scoring import evaluate_model  # TensorFlow: after the arguments
    from agegender.serving.saved import load_model

    model, info = load_model(args.model)
    tables = {}
    for split in ("val", "test"):
        images, _ = load_split(args.data_dir, split)
        tables[split], _, _ = evaluate_model(model, info.age_output, images, labels[labels["split"] == split],
                                             256, True, 30, info.gender_calibration)
    val, test = tables["val"], tables["test"]
    v_pred, v_true = val["pred_age"].to_numpy(float), val["age"].to_numpy(float)
    t_pred = test["pred_age"].to_numpy(float)
    ages = {"none": (v_pred, t_pred)}
    for name, make in MAPS.items():
        ages[name] = (cross_fit(make, v_pred, v_true, args.folds, args.seed),
                      make().fit(v_pred, v_true).predict(t_pred))

    print(f"{machine()}; {args.model} ({info.family}); val {len(val)} faces ({args.folds}-fold "
          f"cross-fitted, seed {args.seed}), test {len(test)} faces (map fitted on all of val)")
    rows, cells = [], []
    for name, (v, t) in ages.items():
        sv = summarise(val, v, val["gender_prob"] >= 0.5)
        st = summarise(test, t, test["gender_prob"] >= 0.5)
        rows.append([name, f"{sv['mae']:.3f}", f"{sv['mean_error']:+.2f}", f"{st['mae']:.3f}",
                     f"{st['mean_error']:+.2f}"])
        cells.append((f"test, {name}", st))
    print(render(["map", "val MAE", "val mean error", "test MAE", "test mean error"], rows, args.markdown))
    print("\ntest: signed mean age error (predicted - true, years) / gender accuracy by life stage x gender")
    print(render(*cell_table(cells), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
