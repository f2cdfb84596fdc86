"""DVC stage export (export/dvc.yaml, never part of plain `dvc repro`): the trained model as a
TensorFlow Lite file for deployment, and its model information beside it as JSON.

    python -m stages.export --model models/model.keras --out models/model.tflite

Writes ``--out`` and ``--out`` + ``.json`` (agegender/serving/export.py); run the result as
docs/predict.md ("Deploying: TensorFlow Lite") shows.
"""
import sys

from agegender import commands


def main(argv=None) -> int:
    parser = commands.parser("export", __doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="saved .keras model")
    parser.add_argument("--out", required=True, help="the .tflite file to write")
    args = parser.parse_args(argv)
    commands.setup_logging(args)
    from agegender.serving.saved import read_info

    read_info(args.model)  # a missing or foreign model is one line, before TensorFlow loads

    from agegender.serving.export import export_tflite, info_path

    info = export_tflite(args.model, args.out)
    print(f"export: {args.out} ({info.family}, {info.profile.name}, float32) and {info_path(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(commands.run("export", main))
