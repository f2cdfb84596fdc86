"""DVC stage model_card: the model card, written from what the pipeline measured and params.yaml."""
import sys

from agegender import commands
from agegender.evaluation.model_card import write_card
from agegender.model.families import load_family_params


def main(argv=None) -> int:
    parser = commands.parser("model_card", __doc__)
    parser.add_argument("--params", default="params.yaml")
    for name in ("quality", "labels", "train-summary", "metrics", "breakdown", "out"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    write_card(load_family_params(args.params), args.quality, args.labels, args.train_summary, args.metrics,
               args.breakdown, args.out)
    print(f"model_card: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("model_card", main))
