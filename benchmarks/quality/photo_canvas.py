"""Faces in photo-like pictures: detection recall and accuracy of the detect path against the chips.

    python -m benchmarks.quality.photo_canvas [--model models/model.keras] [--split test] [--limit N]
                                      [--detectors mtcnn,haar] [--size 640x480] [--seed 0]

Each chip of the split is pasted into a larger picture (``--size``) on a smooth random background,
turned by a random angle in [-30, 30] degrees, at a random scale (chip side 25-60 % of the
picture's short side) and position, all drawn from ``--seed``. The predictor then runs with each
detector (face finding, cutting and, for mtcnn, alignment) on the pictures, and with
``detect=False`` on the chips themselves (the chip path). Printed per path: recall (pictures whose
face was found: a box centred within half a chip side of the true centre), further boxes, age MAE
and gender accuracy on the found faces, the chip path's on the same faces, and pictures/s
end to end (one run, this machine; the CPU is printed).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from agegender.faces.registry import make_detector
from agegender.prediction.predictor import Predictor
from benchmarks.common.canvas import place
from benchmarks.common.chips import add_split_arguments, load_chips, machine, score


def run_path(predictor: Predictor, pictures, truth, labels, chip_records):
    """Predict ``pictures`` with detection; match each picture's faces to its true centre."""
    start = time.perf_counter()
    records = predictor.predict(pictures, detect=True)
    seconds = time.perf_counter() - start
    best, further = {}, 0
    for rec in records:
        if rec["error"]:
            continue
        i = int(rec["file"].split()[1].rstrip(">"))  # "<array i>"
        cx, cy, side = truth[i]
        bx, by, bw, bh = rec["box"]
        dist = math.hypot(bx + bw / 2 - cx, by + bh / 2 - cy)
        if dist < side / 2 and (i not in best or dist < best[i][0]):
            if i in best:
                further += 1
            best[i] = (dist, rec)
        else:
            further += 1
    found = sorted(best)
    detect = score([best[i][1] for i in found], labels, found)
    chip = score([chip_records[i] for i in found], labels, found)
    return {"recall": len(found) / len(pictures), "missed": len(pictures) - len(found),
            "further": further, "detect": detect, "chip": chip, "per_s": len(pictures) / seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--detectors", default="mtcnn,haar")
    parser.add_argument("--size", default="640x480", help="picture width x height")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    chips, labels = load_chips(args.source, args.labels, args.split, args.limit, args.seed)
    rng = np.random.default_rng(args.seed)
    placed = [place(c, rng, w, h) for c in chips]
    pictures = [p[0] for p in placed]
    truth = [(p[1], p[2], p[3]) for p in placed]

    predictor = Predictor(args.model)
    chip_records = predictor.predict(chips, detect=False)
    base = score(chip_records, labels)
    print(f"{len(chips)} {args.split} faces in {w}x{h} pictures (turned -30..30 degrees, seed "
          f"{args.seed}); model {args.model} ({predictor.info.family}, {predictor.profile.name}); "
          f"{machine()}")
    print(f"chip path (detect=False on the chips): age MAE {base['mae']:.2f}, gender {base['gender_acc']:.1%}")
    print(f"{'path':8s} {'recall':>7s} {'missed':>6s} {'further':>7s} {'MAE':>6s} {'chip MAE':>8s} "
          f"{'gender':>7s} {'chip gender':>11s} {'pictures/s':>10s}")
    for name in args.detectors.split(","):
        predictor.detector = make_detector(name)
        r = run_path(predictor, pictures, truth, labels, chip_records)
        d, c = r["detect"], r["chip"]
        print(f"{name:8s} {r['recall']:7.1%} {r['missed']:6d} {r['further']:7d} {d['mae']:6.2f} "
              f"{c['mae']:8.2f} {d['gender_acc']:7.1%} {c['gender_acc']:11.1%} {r['per_s']:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
