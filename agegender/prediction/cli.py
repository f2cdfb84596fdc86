"""The predictor's command line: ``agegender-predict PATH...`` (also ``python -m stages.predict``)."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

# before TensorFlow loads (with the predictor): its C++ warnings (MTCNN's networks log one for
# every photo where a stage finds nothing) are no messages for the user; errors stay visible
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from agegender import cli  # noqa: E402
from agegender.prediction.faces import DETECTORS, make_detector  # noqa: E402
from agegender.prediction.predictor import DEFAULT_MODEL, Predictor, write_records  # noqa: E402

log = logging.getLogger("predict")


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 every file used, 1 some file failed; 2 (from :func:`console`) nothing could run."""
    parser = cli.parser(
        "agegender-predict",
        "Predict age and gender for the faces in images (files, or folders searched recursively). "
        "Exit status: 0 all files used, 1 some file failed, 2 nothing could run.")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="saved .keras model (default %(default)s)")
    parser.add_argument("--format", choices=["csv", "json"], default="csv")
    parser.add_argument("--output", help="write here instead of standard output")
    parser.add_argument("--no-detect", action="store_true",
                        help="images are face crops already: use each whole image as one face")
    parser.add_argument("--no-tta", action="store_true",
                        help="skip the mirrored second pass (twice as fast, as evaluated without it)")
    parser.add_argument("--detector", choices=DETECTORS, default="mtcnn",
                        help="mtcnn (default): boxes and five landmarks, faces cut aligned like "
                             "UTKFace's chips; haar: OpenCV's frontal cascade, boxes only, faster")
    parser.add_argument("--detect-max-side", type=int, default=None,
                        help="search photos for faces shrunk to at most this many pixels "
                             "(default 640 for mtcnn, 800 for haar; larger finds smaller faces, slower)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None,
                        help="threads decoding and finding faces (default: all cores)")
    args = parser.parse_args(argv)
    cli.setup_logging(args)

    # the detector first: if it cannot run, say so before the model takes seconds to load
    detector = "mtcnn" if args.no_detect else make_detector(args.detector, args.detect_max_side)
    predictor = Predictor(args.model, detector=detector, batch_size=args.batch_size,
                          tta=not args.no_tta, workers=args.workers)
    records = []
    for rec in predictor.iter_records(args.paths, detect=not args.no_detect):
        if rec["error"]:
            log.warning("%s: %s", rec["file"], rec["error"])
        records.append(rec)

    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "w", newline="") as f:
            write_records(records, args.format, f)
    else:
        write_records(records, args.format, sys.stdout)
    failed = sorted({r["file"] for r in records if r["error"]})
    used = {r["file"] for r in records} - set(failed)
    faces = sum(1 for r in records if not r["error"])
    log.info("%d files, %d faces, %d failed (model %s, %s, predicting in %s)", len(used) + len(failed),
             faces, len(failed), predictor.info.family, predictor.profile.name, predictor.info.precision)
    return 1 if failed else 0


def console(argv: list[str] | None = None) -> int:
    """Entry point of the ``agegender-predict`` console script: a setup problem (no model, no
    detector) ends with its message and exit status 2."""
    return cli.run("predict", main, argv, error_status=2)


if __name__ == "__main__":
    sys.exit(console())
