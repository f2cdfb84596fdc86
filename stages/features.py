"""DVC stage features: the frozen base of a transfer family run once over every face of train and
val and its mirror image (agegender/training/features.py); for a model that trains from images it
writes only its spec, at no cost."""
import sys

from agegender import commands
from agegender.model.families import load_family_params
from agegender.training.features import compute_features, read_spec


def main(argv=None) -> int:
    parser = commands.parser("features", __doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--spec", required=True, help="check_params' features spec (this stage's dep)")
    parser.add_argument("--data-dir", required=True, help="the preprocess stage's arrays")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    spec = read_spec(args.spec)
    # params only for the weights file's path and the base's settings: the spec holds what matters
    done = compute_features(load_family_params(args.params), args.data_dir, args.out_dir, spec, args.batch_size)
    if spec.get("backbone") is None:
        print("features: none needed (the model in use trains from images)")
    else:
        faces = sum(s["faces"] for s in done["splits"].values())
        print(f"features: {done['backbone']} over {faces} faces x 2 in {done['seconds']} s "
              f"({2 * faces / max(done['seconds'], 1e-9):.1f} images/s, {done['precision_used']})")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("features", main))
