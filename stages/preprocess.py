"""DVC stage preprocess: decode every kept image once into the model's input profile, as uint8 .npy
(with ``preprocess.faces: aligned``, each first cut as the predictor cuts a face)."""
import sys

from agegender import commands
from agegender.data.preprocessing import write_arrays
from agegender.faces.recut import Recutter
from agegender.model.families import get_family, load_family_params


def main(argv=None) -> int:
    parser = commands.parser("preprocess", __doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--labels", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--faces-out", help="where to write which faces were found (JSON)")
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    params = load_family_params(args.params)
    meta = write_arrays(params.data.source, args.labels, args.out_dir, get_family(params.model).profile,
                        extra=params.data.extra,
                        recutter=Recutter("mtcnn") if params.preprocess.faces == "aligned" else None,
                        cut_splits=params.preprocess.splits, faces_out=args.faces_out)
    print(f"preprocess: {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("preprocess", main))
