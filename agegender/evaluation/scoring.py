"""Scoring a trained model on labelled faces: predict -> decode -> per-face table -> metrics.

The one path from a model to ``metrics.json``, used by the evaluate stage and by k-fold, so a fold
is scored exactly as the test split is.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from agegender.data.bins import FIVE_YEAR
from agegender.evaluation import breakdown
from agegender.evaluation.metrics import (
    ECE_BINS,
    age_metrics,
    bin_metrics,
    expected_calibration_error,
    five_year_accuracy,
    gender_metrics,
    interval_metrics,
)
from agegender.model.targets import AgeOutput
from agegender.serving.calibration import GenderCalibration


def predictions_table(labels: pd.DataFrame, decoded: dict, age_output: AgeOutput) -> pd.DataFrame:
    """Per-face table: true labels beside predictions, with five-year groups (and own bins).

    ``pred_age_low`` / ``pred_age_high``: the 80 % age interval (10th-90th percentile of the age
    distribution; empty for regression models). ``gender_prob``: P(female) as the predictor
    states it (temperature-scaled when the model has a temperature); ``gender_prob_raw``: the
    network's own."""
    df = labels[["file", "age", "gender", "race"]].reset_index(drop=True).copy()
    df["pred_age"] = np.round(decoded["pred_age"], 2)
    nan = np.full(len(df), np.nan)
    df["pred_age_low"] = np.round(decoded.get("age_low", nan), 2)
    df["pred_age_high"] = np.round(decoded.get("age_high", nan), 2)
    df["gender_prob"] = np.round(decoded["gender_prob"], 4)
    df["gender_prob_raw"] = np.round(decoded.get("gender_prob_raw", decoded["gender_prob"]), 4)
    df["pred_gender"] = (decoded["gender_prob"] >= 0.5).astype(int)
    df["age_group"] = FIVE_YEAR.label_of(df["age"])
    df["pred_age_group"] = FIVE_YEAR.label_of(df["pred_age"])
    if "pred_bin" in decoded:
        scheme = age_output.scheme
        df["bin"] = scheme.label_of(df["age"])
        df["pred_bin"] = [scheme.labels()[i] for i in decoded["pred_bin"]]
    return df


def score(df: pd.DataFrame, age_output: AgeOutput) -> dict:
    """Headline metrics of a predictions table: age, gender and (bins models) own-bin scores.

    With interval columns (``pred_age_low``/``_high``) ``age`` also holds ``interval_coverage``
    (share of true ages inside the 80 % interval) and ``interval_width`` (years); ``gender.ece`` is
    the expected calibration error of the stated probability (``ECE_BINS`` bins), and with
    ``gender_prob_raw`` ``gender.ece_uncalibrated`` is that of the network's own."""
    metrics = {
        "age": {**age_metrics(df["age"], df["pred_age"]),
                "five_year_accuracy": five_year_accuracy(df["age"], df["pred_age"])},
        "gender": {**gender_metrics(df["gender"], df["gender_prob"]),
                   "ece": expected_calibration_error(df["gender"], df["gender_prob"]),
                   "ece_bins": ECE_BINS},
    }
    if "gender_prob_raw" in df:
        metrics["gender"]["ece_uncalibrated"] = expected_calibration_error(df["gender"], df["gender_prob_raw"])
    if "pred_age_low" in df:
        interval = interval_metrics(df["age"], df["pred_age_low"], df["pred_age_high"])
        metrics["age"].update(interval_coverage=interval["coverage"], interval_width=interval["width"])
    if "pred_bin" in df:
        index = {label: i for i, label in enumerate(age_output.scheme.labels())}
        metrics["bins"] = bin_metrics(df["bin"].map(index), df["pred_bin"].map(index))
    return metrics


def evaluate_model(model, age_output: AgeOutput, images, labels: pd.DataFrame,
                   batch_size: int, tta_flip: bool, min_group_size: int,
                   gender_calibration: GenderCalibration | None = None) -> tuple[pd.DataFrame, dict, dict]:
    """Predict ``images`` (N, S, S, C) uint8 whose label rows are ``labels`` (same order) and score
    them. Returns (predictions table, metrics with ``fairness`` and ``test_images``, full breakdown).
    ``metrics["cost"]["inference_images_per_second"]`` is the measured prediction speed.
    ``gender_calibration``: the model's temperature (its saved information), applied as the
    predictor applies it; ``metrics["gender"]["temperature"]`` names it (None: none)."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} label rows")
    from agegender.serving.inference import predict  # TensorFlow: only once there is a model to run

    start = time.perf_counter()
    temperature = None if gender_calibration is None else gender_calibration.temperature
    decoded = predict(model, age_output, images, batch_size, tta_flip, temperature)
    seconds = time.perf_counter() - start
    df = predictions_table(labels, decoded, age_output)
    metrics = score(df, age_output)
    metrics["gender"]["temperature"] = temperature
    metrics["gender"]["temperature_fitted_on"] = (
        None if gender_calibration is None
        else f"{gender_calibration.held_out} ({gender_calibration.faces} faces)")
    metrics["cost"] = {"inference_images_per_second": round(len(images) / seconds, 1)}
    metrics["test_images"] = len(df)
    full = breakdown.breakdown(df, min_group_size)
    metrics["fairness"] = breakdown.headline(full)
    return df, metrics, full


def rounded(obj):
    """Floats rounded to 4 digits, recursively: metrics files that diff cleanly."""
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return round(obj, 4) if isinstance(obj, float) else obj
