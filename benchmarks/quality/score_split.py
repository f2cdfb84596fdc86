"""A trained model scored on one cached split exactly as the evaluate stage scores test: the
validation score a recipe is chosen on (the quality/compute curve of docs/log.md).

    python -m benchmarks.quality.score_split [--model models/model.keras] [--split val]
                                             [--data-dir data/processed] [--labels data/interim/labels.csv]
                                             [--summary models/train_summary.json] [--no-tta] [--json-out F]

Reads the split's cached arrays and label rows (what train and evaluate read), predicts with
mirrored test-time augmentation unless ``--no-tta`` (the evaluate stage's default) and prints one
line: age MAE, CS@5, gender accuracy, with the training cost from the train summary beside them
(``cost.train_tflop``: FLOPs counted from the model; seconds and the CPU they were measured on);
then a line by true gender (men, women: faces, age MAE, gender accuracy), the breakdown's.
Use it on val after a validation run (``final_fit: false``); test is the evaluate stage's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from agegender.data.arrays import load_split
from agegender.evaluation.scoring import evaluate_model, rounded
from agegender.training.summary import TrainSummary

PEOPLE = {"male": "men", "female": "women"}  # the breakdown's gender groups, as the line names them


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/model.keras")
    parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--labels", default="data/interim/labels.csv")
    parser.add_argument("--summary", default="models/train_summary.json")
    parser.add_argument("--no-tta", action="store_true", help="no mirrored second pass")
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)

    from agegender.serving.saved import load_model  # TensorFlow: after the arguments

    model, info = load_model(args.model)
    images, _ = load_split(args.data_dir, args.split)
    labels = pd.read_csv(args.labels)
    _, metrics, full = evaluate_model(model, info.age_output, images, labels[labels["split"] == args.split],
                                      256, not args.no_tta, 30, info.gender_calibration)
    summary = TrainSummary.read(args.summary) if Path(args.summary).is_file() else None
    out = {"split": args.split, "faces": metrics["test_images"], "tta_flip": not args.no_tta,
           "age_mae": metrics["age"]["mae"], "cs5": metrics["age"]["cs5"],
           "gender_accuracy": metrics["gender"]["accuracy"],
           "train_tflop": summary.train_tflop if summary else None,
           "train_seconds": summary.train_seconds if summary else None,
           "epochs_run": summary.epochs_run if summary else None,
           "device": summary.device if summary else None, "precision": summary.precision if summary else None,
           "by_gender": {g["group"]: {k: g[k] for k in ("n", "mae", "gender_accuracy")}
                         for g in full["gender"]["groups"] if g["n"]}}
    out = rounded(out)
    print(f"{args.split} ({out['faces']} faces, flip {'on' if out['tta_flip'] else 'off'}): MAE {out['age_mae']:.2f}, "
          f"CS@5 {100 * out['cs5']:.1f} %, gender {100 * out['gender_accuracy']:.1f} %; training "
          f"{out['train_tflop']} TFLOP, {out['train_seconds']} s, {out['epochs_run']} epochs on "
          f"{out['device']} in {out['precision']}")
    print("by gender: " + "; ".join(f"{PEOPLE[name]} ({g['n']}): MAE {g['mae']:.2f}, gender "
                                    f"{100 * g['gender_accuracy']:.1f} %" for name, g in out["by_gender"].items()))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
