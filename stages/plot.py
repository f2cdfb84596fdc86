"""DVC stage plot: every figure of agegender.evaluation.figures.FIGURES, as PNG files."""
import sys

from agegender import commands
from agegender.evaluation.figures import draw_all


def main(argv=None) -> int:
    parser = commands.parser("plot", __doc__)
    for name in ("predictions", "live-dir", "breakdown", "labels", "test-images", "model", "out-dir"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    written = draw_all(args.predictions, args.live_dir, args.out_dir, args.breakdown, args.labels,
                       args.test_images, model=args.model)
    print(f"plot: wrote {len(written)} figures to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("plot", main))
