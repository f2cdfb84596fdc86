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
