"""DVC stage evaluate_external (external/dvc.yaml): score the trained model on a labelled set of
your own (``external.source``: labels.csv + images) through the predictor's face finding.

Writes a metrics file (age and gender scores of the images where a face was found, and how many
images were scored, had no face, failed or were skipped), one row per usable image, and the
skipped rows with their reasons. Run it with ``dvc repro external/dvc.yaml``.
"""
import sys

from agegender import commands
from agegender.params import load_params


def main(argv=None) -> int:
    parser = commands.parser("evaluate_external", __doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    for name in ("model", "metrics-out", "predictions-out", "skipped-out"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    cfg = load_params(args.params).external

    from agegender.evaluation.external import evaluate_folder, write  # TensorFlow: after the check
    from agegender.prediction.predictor import Predictor

    df, result = evaluate_folder(Predictor(args.model), cfg.source, detect=cfg.detect)
    write(df, result, args.metrics_out, args.predictions_out, args.skipped_out)
    m = result["metrics"]
    print(f"evaluate_external: {m['images']}; age {m.get('age')}, gender {m.get('gender')}")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("evaluate_external", main))
