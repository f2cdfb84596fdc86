"""DVC stages of kfold/dvc.yaml: ``cv`` trains and scores one model per fold, ``aggregate`` reports
mean and std over folds (agegender.evaluation.kfold)."""
import sys

from agegender import commands
from agegender.evaluation.kfold import run_aggregate, run_cv
from agegender.model.families import load_family_params


def main(argv=None) -> int:
    parser = commands.parser("kfold", __doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    cv = steps.add_parser("cv")
    cv.add_argument("--params", default="params.yaml")
    for name in ("data-dir", "labels", "folds-dir"):
        cv.add_argument(f"--{name}", required=True)
    agg = steps.add_parser("aggregate")
    for name in ("folds-dir", "metrics-out", "per-fold-out", "summary-out"):
        agg.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    if args.step == "cv":
        results = run_cv(load_family_params(args.params), args.data_dir, args.labels, args.folds_dir)
        print(f"kfold: {len(results)} folds done")
    else:
        result = run_aggregate(args.folds_dir, args.metrics_out, args.per_fold_out, args.summary_out)
        print(f"kfold: age MAE {result['mean']['age']['mae']} ± {result['std']['age']['mae']} "
              f"over {result['n_folds']} folds")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("kfold", main))
