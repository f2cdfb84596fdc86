"""Scoring functions shared by evaluate, cross-validation and benchmarks. Ages are in years."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from agegender.data.bins import FIVE_YEAR


def age_metrics(true_age, pred_age) -> dict:
    """MAE and RMSE in years, and CS@5: the share of faces predicted within 5 years."""
    err = np.abs(np.asarray(pred_age, float) - np.asarray(true_age, float))
    return {"mae": float(err.mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "cs5": float((err <= 5).mean())}


def gender_metrics(true_gender, prob_female, threshold: float = 0.5) -> dict:
    """Accuracy, F1 (female = positive class) and ROC AUC; AUC is NaN when one class is absent."""
    true_gender = np.asarray(true_gender).astype(int)
    pred = (np.asarray(prob_female) >= threshold).astype(int)
    auc = (float(roc_auc_score(true_gender, prob_female)) if len(np.unique(true_gender)) == 2
           else float("nan"))
    return {"accuracy": float(accuracy_score(true_gender, pred)),
            "f1": float(f1_score(true_gender, pred, zero_division=0)), "roc_auc": auc}


def bin_metrics(true_bin, pred_bin) -> dict:
    """Exact and one-off (neighbouring bin counts as right) accuracy of bin indices."""
    diff = np.abs(np.asarray(true_bin) - np.asarray(pred_bin))
    return {"accuracy": float((diff == 0).mean()), "one_off_accuracy": float((diff <= 1).mean())}


def five_year_accuracy(true_age, pred_age) -> float:
    """Accuracy on the 20 five-year groups (seed 004), the bin scale every model is scored on."""
    return float((FIVE_YEAR.encode(true_age) == FIVE_YEAR.encode(pred_age)).mean())


ECE_BINS = 10  # equal-width bins of the predicted gender's confidence over [0.5, 1]


def reliability(true_gender, prob_female, n_bins: int = ECE_BINS) -> dict:
    """Reliability table of the gender output: the confidence of the predicted gender
    ``c = max(p, 1 - p)`` (0.5 to 1) cut into ``n_bins`` equal-width bins over [0.5, 1] (the top
    bin includes 1). Per bin (arrays of shape (n_bins,)): ``lower``/``upper`` edges, ``n`` faces,
    ``confidence`` (mean c) and ``accuracy`` (share predicted right); NaN in empty bins."""
    y = np.asarray(true_gender).astype(int)
    p = np.asarray(prob_female, dtype=np.float64)
    conf = np.maximum(p, 1.0 - p)
    right = ((p >= 0.5).astype(int) == y).astype(np.float64)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, conf, n_bins) / n
        accuracy = np.bincount(index, right, n_bins) / n
    return {"lower": edges[:-1], "upper": edges[1:], "n": n, "confidence": mean_conf,
            "accuracy": accuracy}


def expected_calibration_error(true_gender, prob_female, n_bins: int = ECE_BINS) -> float:
    """ECE of the gender output (Guo et al. 2017, top-label): the mean over faces of
    |accuracy - confidence| of their :func:`reliability` bin, i.e. sum_b n_b / N |acc_b - conf_b|.
    0 for a perfectly calibrated output; 0.1 means the stated confidence is 10 points off on
    average. NaN when there are no faces."""
    table = reliability(true_gender, prob_female, n_bins)
    n = table["n"]
    if n.sum() == 0:
        return float("nan")
    seen = n > 0
    gap = np.abs(table["accuracy"][seen] - table["confidence"][seen])
    return float((n[seen] * gap).sum() / n.sum())


def interval_metrics(true_age, low, high) -> dict:
    """How often the true age lies in the predicted interval [low, high] (``coverage``, a share)
    and the interval's mean width (``width``, years). None for both when there are no intervals
    (NaN bounds: a regression model gives none)."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    age = np.asarray(true_age, dtype=np.float64)
    have = ~(np.isnan(low) | np.isnan(high))
    if not have.any():
        return {"coverage": None, "width": None}
    inside = (age[have] >= low[have]) & (age[have] <= high[have])
    return {"coverage": float(inside.mean()), "width": float((high[have] - low[have]).mean())}
