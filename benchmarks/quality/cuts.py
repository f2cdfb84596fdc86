"""One model on the same faces as UTKFace's chips and as the predictor cuts them, by life stage.

    python -m benchmarks.quality.cuts [--model models/model.keras] [--split test] [--limit N]
                              [--detector mtcnn|haar] [--no-tta]

Each chip of the split is recut by :func:`agegender.faces.recut.recut` (the predictor's
detector on the chip padded by 50 grey pixels, the face nearest the centre cut as predict cuts a
photo; the chip itself where no face is found): what ``preprocess.faces: aligned`` trains on.
Both sets go through the model as face crops (``detect=False``: the same decoding, mirrored
test-time augmentation unless ``--no-tta``). Printed: the faces found and the cut pass's faces/s
(one run, this machine; the CPU is printed), then MAE (years), CS@5 (share within 5 years) and
gender accuracy as chips and as cuts, and cuts minus chips, for all faces, for the faces found
only, and per life stage (``agegender.data.bins.LIFE_STAGES``, by true age). A model trained on
chips scored on cuts is the gap the predictor pays on real photos for framing alone; a model
trained on cuts should close it.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from PIL import Image

from agegender.data.bins import LIFE_STAGES
from agegender.data.images import to_array, to_mode
from agegender.evaluation.breakdown import group_scores
from agegender.faces.recut import recut
from agegender.faces.registry import DETECTORS, make_detector
from agegender.prediction.predictor import Predictor
from benchmarks.common.chips import add_split_arguments, load_chips, machine


def cut_all(chips, detector, channels: int) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Every chip recut (converted to ``channels`` first, as the predictor converts before
    detecting). Returns (cuts, faces found per chip (N,), seconds taken)."""
    cuts, found = [], []
    start = time.perf_counter()
    for chip in chips:
        cut, faces = recut(to_mode(Image.fromarray(chip), channels), detector)
        cuts.append(cut)
        found.append(faces)
    return cuts, np.array(found), time.perf_counter() - start


def predictions(predictor: Predictor, faces, labels: pd.DataFrame, tta: bool) -> pd.DataFrame:
    """``labels`` with ``pred_age`` and ``gender_prob`` (P(female)) of ``faces`` as face crops."""
    from agegender.serving.inference import predict

    arrays = np.stack([to_array(Image.fromarray(f), predictor.profile) for f in faces])
    decoded = predict(predictor.model, predictor.info.age_output, arrays, predictor.batch_size, tta)
    return labels.assign(pred_age=decoded["pred_age"], gender_prob=decoded["gender_prob"])


def compare(chips: pd.DataFrame, cuts: pd.DataFrame, found: np.ndarray) -> list[tuple[str, dict, dict]]:
    """(group, chip scores, cut scores) for all faces, the faces found, and each life stage."""
    stage = np.array(LIFE_STAGES.label_of(chips["age"].to_numpy()))
    groups = [("all", np.ones(len(chips), bool)), ("found", found > 0)]
    groups += [(f"age {name}", stage == name) for name in LIFE_STAGES.labels()]
    return [(name, group_scores(chips[m]), group_scores(cuts[m])) for name, m in groups]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--detector", choices=DETECTORS, default="mtcnn")
    parser.add_argument("--no-tta", action="store_true", help="no mirrored test-time augmentation")
    args = parser.parse_args(argv)

    chips, labels = load_chips(args.source, args.labels, args.split, args.limit)
    predictor = Predictor(args.model)
    detector = make_detector(args.detector)
    cuts, found, seconds = cut_all(chips, detector, predictor.profile.channels)
    tta = not args.no_tta
    rows = compare(predictions(predictor, chips, labels, tta), predictions(predictor, cuts, labels, tta), found)
    print(f"{args.split}: {len(chips)} faces, model {args.model} ({predictor.info.family}, "
          f"{predictor.profile.name}), tta {'flip' if tta else 'off'}")
    print(f"{args.detector}: face found in {int((found > 0).sum())} ({np.mean(found > 0):.1%}), "
          f"several in {int((found > 1).sum())}; cut pass {len(chips) / seconds:.1f} faces/s ({machine()})")
    print(f"{'group':10s} {'n':>5s}  {'MAE chip':>8s} {'cut':>6s} {'diff':>6s}  {'CS@5 chip':>9s} {'cut':>6s} "
          f"{'diff':>6s}  {'gender chip':>11s} {'cut':>6s} {'diff':>7s}")
    for name, a, b in rows:
        print(f"{name:10s} {a['n']:5d}  {a['mae']:8.2f} {b['mae']:6.2f} {b['mae'] - a['mae']:+6.2f}  "
              f"{a['cs5']:9.1%} {b['cs5']:6.1%} {100 * (b['cs5'] - a['cs5']):+5.1f}pt  "
              f"{a['gender_accuracy']:11.1%} {b['gender_accuracy']:6.1%} "
              f"{100 * (b['gender_accuracy'] - a['gender_accuracy']):+6.1f}pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
