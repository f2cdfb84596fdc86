"""DVC stage train: fit the chosen model family on the cached arrays; save the model and a summary."""
import json
import sys
from pathlib import Path

from agegender import cli
from agegender.data.arrays import load_split
from agegender.params import load_params


def main(argv=None) -> int:
    parser = cli.parser("train", __doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model-out", required=True)
    parser.add_argument("--live-dir", required=True)
    parser.add_argument("--summary-out", required=True)
    args = parser.parse_args(argv)
    cli.setup_logging(args)
    params = load_params(args.params)

    from agegender.model.saved import ModelInfo, save_model  # TensorFlow: after the params check
    from agegender.model.training import train_model

    model, summary = train_model(params.model, params.recipe, params.train.seed,
                                 load_split(args.data_dir, "train"), load_split(args.data_dir, "val"),
                                 args.live_dir, verbose=0 if args.quiet else 2)
    save_model(model, args.model_out, ModelInfo.for_family(params.model, params.recipe.precision))
    Path(args.summary_out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"train: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run("train", main))
