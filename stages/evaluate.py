"""Stage 4, evaluate: score the trained model on the held-out test split.

Writes ``reports/metrics.json`` (DVC metrics: age MAE / RMSE / CS@5 / five-year-group accuracy,
gender accuracy / F1 / ROC AUC, own-bin accuracy for bins models, cost, and the headline fairness
gaps under ``fairness``), ``reports/predictions.csv`` (one row per test face) and the full
fairness tables ``reports/breakdown.json`` / ``.csv`` (see :mod:`stages.breakdown`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stages import breakdown
from stages.bins import FIVE_YEAR
from stages.config import load_params
from stages.inference import decode_outputs, load_model, predict_outputs
from stages.metrics import age_metrics, bin_metrics, five_year_accuracy, gender_metrics
from stages.preprocess import load_split
from stages.registry import get_spec


def predictions_table(labels: pd.DataFrame, decoded: dict, spec) -> pd.DataFrame:
    """Per-face table: true labels beside predictions, with five-year groups (and own bins)."""
    df = labels[["file", "age", "gender", "race"]].reset_index(drop=True).copy()
    df["pred_age"] = np.round(decoded["pred_age"], 2)
    df["gender_prob"] = np.round(decoded["gender_prob"], 4)
    df["pred_gender"] = (decoded["gender_prob"] >= 0.5).astype(int)
    groups = FIVE_YEAR.labels()
    df["age_group"] = [groups[i] for i in FIVE_YEAR.encode(df["age"])]
    df["pred_age_group"] = [groups[i] for i in FIVE_YEAR.encode(df["pred_age"])]
    if "pred_bin" in decoded:
        scheme = spec.age_output.scheme
        df["bin"] = [scheme.labels()[i] for i in scheme.encode(df["age"])]
        df["pred_bin"] = [scheme.labels()[i] for i in decoded["pred_bin"]]
    return df


def score(df: pd.DataFrame, spec) -> dict:
    metrics = {
        "age": {**age_metrics(df["age"], df["pred_age"]),
                "five_year_accuracy": five_year_accuracy(df["age"], df["pred_age"])},
        "gender": gender_metrics(df["gender"], df["gender_prob"]),
    }
    if "pred_bin" in df:
        scheme = spec.age_output.scheme
        index = {label: i for i, label in enumerate(scheme.labels())}
        metrics["bins"] = bin_metrics(df["bin"].map(index), df["pred_bin"].map(index))
    return metrics


def run(params: dict, model_path, data_dir, labels_csv, train_summary, metrics_out, predictions_out,
        breakdown_out=None, breakdown_csv_out=None) -> dict:
    spec = get_spec(params["model"])
    model = load_model(model_path)
    images, _ = load_split(data_dir, "test")
    labels = pd.read_csv(labels_csv)
    labels = labels[labels["split"] == "test"]
    cfg = params["evaluate"]
    start = time.perf_counter()
    outputs = predict_outputs(model, images, cfg["batch_size"], cfg["tta_flip"])
    seconds = time.perf_counter() - start
    df = predictions_table(labels, decode_outputs(outputs, spec.age_output), spec)
    metrics = score(df, spec)
    summary = json.loads(Path(train_summary).read_text()) if train_summary else {}
    metrics["cost"] = {"parameters": int(model.count_params()),
                       "train_seconds": summary.get("train_seconds"),
                       "inference_images_per_second": round(len(images) / seconds, 1)}
    metrics["test_images"] = len(df)
    full = breakdown.breakdown(df, cfg.get("breakdown_min_group_size", 1))
    metrics["fairness"] = breakdown.headline(full)
    Path(metrics_out).parent.mkdir(parents=True, exist_ok=True)
    if breakdown_out:
        Path(breakdown_out).write_text(json.dumps(_rounded(full), indent=2) + "\n")
    if breakdown_csv_out:
        breakdown.long_table(full).round(4).to_csv(breakdown_csv_out, index=False)
    Path(metrics_out).write_text(json.dumps(_rounded(metrics), indent=2) + "\n")
    df.to_csv(predictions_out, index=False)
    return metrics


def _rounded(obj):
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return round(obj, 4) if isinstance(obj, float) else obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", default="models/model.keras")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--labels", default="data/interim/labels.csv")
    parser.add_argument("--train-summary", default="models/train_summary.json")
    parser.add_argument("--metrics-out", default="reports/metrics.json")
    parser.add_argument("--predictions-out", default="reports/predictions.csv")
    parser.add_argument("--breakdown-out", default="reports/breakdown.json")
    parser.add_argument("--breakdown-csv-out", default="reports/breakdown.csv")
    args = parser.parse_args(argv)
    metrics = run(load_params(args.params), args.model, args.data_dir, args.labels,
                  args.train_summary, args.metrics_out, args.predictions_out,
                  args.breakdown_out, args.breakdown_csv_out)
    print(f"evaluate: age {metrics['age']}, gender {metrics['gender']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
