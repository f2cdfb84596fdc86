"""DVC stage evaluate: score the trained model on the test split.

Writes the DVC metrics file (age MAE / RMSE / CS@5 / five-year-group accuracy / 80 % interval
coverage, gender accuracy / F1 / ROC AUC / calibration error before and after the model's
temperature, own-bin accuracy for bins models, cost, headline fairness gaps), one row per test
face, and the full fairness tables (agegender.evaluation.breakdown).
"""
import json
import sys
from pathlib import Path

import pandas as pd

from agegender import commands
from agegender.data.arrays import load_split
from agegender.evaluation import breakdown
from agegender.evaluation.scoring import evaluate_model, rounded
from agegender.params import load_params
from agegender.training.summary import TrainSummary


def main(argv=None) -> int:
    parser = commands.parser("evaluate", __doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    for name in ("model", "data-dir", "labels", "train-summary", "metrics-out", "predictions-out",
                 "breakdown-out", "breakdown-csv-out"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    cfg = load_params(args.params).evaluate

    from agegender.serving.saved import load_model  # TensorFlow: after the params check

    model, info = load_model(args.model)
    images, _ = load_split(args.data_dir, "test")
    labels = pd.read_csv(args.labels)
    df, metrics, full = evaluate_model(model, info.age_output, images, labels[labels["split"] == "test"],
                                       cfg.batch_size, cfg.tta_flip, cfg.breakdown_min_group_size,
                                       info.gender_calibration)
    summary = TrainSummary.read(args.train_summary)
    metrics["cost"] = {"parameters": int(model.count_params()),
                       "train_seconds": summary.train_seconds,
                       # FLOPs counted from the model (CPU-independent)
                       "train_tflop": summary.train_tflop,
                       # with cached features, the pass that made them; and the run's whole cost,
                       # that pass included, for every run: what the review view compares
                       **({"features_tflop": summary.features_tflop} if summary.features_tflop is not None else {}),
                       **({"total_tflop": round(summary.train_tflop + (summary.features_tflop or 0.0), 6)}
                          if summary.train_tflop is not None else {}),
                       **metrics["cost"],
                       # what training ran on, and the precision evaluation predicted in
                       "precision": summary.precision, "device": summary.device,
                       "strategy": summary.strategy, "inference_precision": info.precision}
    Path(args.metrics_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.breakdown_out).write_text(json.dumps(rounded(full), indent=2) + "\n")
    breakdown.long_table(full).round(4).to_csv(args.breakdown_csv_out, index=False)
    Path(args.metrics_out).write_text(json.dumps(rounded(metrics), indent=2) + "\n")
    df.to_csv(args.predictions_out, index=False)
    print(f"evaluate: age {metrics['age']}, gender {metrics['gender']}")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("evaluate", main))
