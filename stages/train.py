"""DVC stage train: fit the chosen model family on the cached arrays; save the model and a summary.

The saved model carries its gender temperature (agegender/serving/calibration.py) when it has
held-out faces: val in a validation run, the ``calibration_holdout`` share in a final fit."""
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

from agegender import commands
from agegender.data.arrays import hold_out, load_split
from agegender.model.families import load_family_params


def main(argv=None) -> int:
    parser = commands.parser("train", __doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model-out", required=True)
    parser.add_argument("--live-dir", required=True)
    parser.add_argument("--summary-out", required=True)
    parser.add_argument("--features-dir", default=None,
                        help="the features stage's output: a transfer recipe with features: cached "
                             "trains its head from it")
    parser.add_argument("--backup-dir", default=None,
                        help="where an interrupted run keeps its last finished epoch (not an output)")
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    params = load_family_params(args.params)

    from agegender.hardware import is_chief  # TensorFlow: after the params check
    from agegender.serving.inference import fit_gender_calibration, gender_calibration
    from agegender.serving.saved import ModelInfo, save_model
    from agegender.training.features import (
        FeatureCache,
        cached_gender_probability,
        feature_spec,
        uses_cached_features,
    )
    from agegender.training.fit import train_model

    features = None
    if args.features_dir and uses_cached_features(params):  # computed for these very settings
        features = FeatureCache(args.features_dir, feature_spec(params))

    recipe = params.recipe
    train, val = load_split(args.data_dir, "train"), load_split(args.data_dir, "val")
    held, held_as = (val, "val") if not recipe.final_fit else (None, None)
    if recipe.final_fit and recipe.calibration_holdout:
        train, val, held = hold_out(train, val, recipe.calibration_holdout, params.train.seed)
        held_as = "holdout"

    out = {"model": args.model_out, "summary": args.summary_out, "live": args.live_dir}
    with tempfile.TemporaryDirectory() as scratch:
        # under multi-worker training every worker trains; only the chief writes the outputs
        live = args.live_dir if params.train.strategy != "multi_worker" else Path(scratch) / "live"
        model, summary = train_model(params.model, recipe, params.train.seed, train, val,
                                     live, verbose=0 if args.quiet else "auto",
                                     strategy=params.train.strategy, backup_dir=args.backup_dir,
                                     features=features)
        if held is None:
            calibration = None
        elif features is not None and held_as == "val":  # the head on val's cached features
            calibration = gender_calibration(cached_gender_probability(model, features.split("val")),
                                             held[1], held_as)
        else:
            calibration = fit_gender_calibration(model, *held, held_as)
        if not is_chief(model.distribute_strategy):
            out = {k: Path(scratch) / Path(v).name for k, v in out.items()}
        elif live != args.live_dir:
            shutil.rmtree(args.live_dir, ignore_errors=True)
            shutil.copytree(live, args.live_dir)
        if features is not None:  # the cost of the pass the run trained from
            summary = dataclasses.replace(summary, features_tflop=features.spec.get("tflop"))
        save_model(model, out["model"], ModelInfo.for_family(params.model, summary.precision, calibration))
        summary.write(out["summary"])
    print(f"train: {summary.to_json()}; gender temperature "
          + (f"{calibration.temperature} ({calibration.held_out}, {calibration.faces} faces)"
             if calibration else "none (final fit without calibration_holdout, or under 100 held-out faces)"))
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("train", main))
