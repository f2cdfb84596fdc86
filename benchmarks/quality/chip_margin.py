"""Measure where a face detector puts UTKFace's aligned chips: the geometry predict cuts faces by.

    python -m benchmarks.quality.chip_margin data/raw/UTKFace.tar.gz [--detector mtcnn|haar] [--n 700] [--every 7]

Reads chips straight from the archive (or folder; nothing is written), pads each 200 x 200 chip
by 100 px of grey so that a face filling the chip can still be found, and runs the detector of
``agegender.faces`` with its own settings (the figures feed
``agegender.faces.alignment``).

- ``haar``: prints the box side over the chip side and the box centre as fractions of the chip.
  ``CHIP_SIDE`` and ``CHIP_DROP`` come from these figures: crop side = box side / (box side /
  chip side), crop centre = box centre moved down by (0.5 - centre y) chip sides.
- ``mtcnn``: prints where the five landmarks sit as fractions of the chip side (medians:
  ``CHIP_LANDMARKS``), then how far the chip that ``aligned_chip`` cuts from the padded chip is
  from the chip itself: the scale, rotation and shift of the alignment (1, 0 degrees and 0 px if it
  came out as the chip).
"""
from __future__ import annotations

import argparse
import math
import sys

import numpy as np
from PIL import Image

from agegender.data.images import decode
from agegender.data.source import iter_images
from agegender.faces.alignment import CHIP_DROP, CHIP_LANDMARKS, CHIP_SIDE, similarity_transform
from agegender.faces.detector import LANDMARKS
from agegender.faces.haar import HaarDetector
from agegender.faces.mtcnn import MtcnnDetector

PAD = 100


def _percentiles(label: str, values) -> None:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    print(f"{label:24s} median {p50:7.4f}  (p10 {p10:7.4f}, p90 {p90:7.4f})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="UTKFace archive or folder")
    parser.add_argument("--detector", choices=["mtcnn", "haar"], default="mtcnn")
    parser.add_argument("--n", type=int, default=700, help="chips to measure")
    parser.add_argument("--every", type=int, default=7, help="take every k-th chip of the archive")
    args = parser.parse_args(argv)

    detector = MtcnnDetector(max_side=10_000) if args.detector == "mtcnn" else HaarDetector()
    rows, seen, extra = [], 0, 0
    for i, (name, data) in enumerate(iter_images(args.source)):
        if i % args.every:
            continue
        chip = decode(data, name).convert("RGB")
        w, h = chip.size
        padded = Image.new("RGB", (w + 2 * PAD, h + 2 * PAD), (128, 128, 128))
        padded.paste(chip, (PAD, PAD))
        found = detector(padded)
        seen += 1
        if found:
            extra += len(found) - 1
            face = max(found, key=lambda f: f.box.w)
            if args.detector == "mtcnn":
                rows.append(((face.landmarks - PAD) / [w, h]).ravel())
            else:
                b = face.box
                rows.append((b.w / w, (b.x - PAD + b.w / 2) / w, (b.y - PAD + b.h / 2) / h))
        if len(rows) >= args.n:
            break
    a = np.array(rows)
    print(f"{args.detector}: {seen} chips, face found in {len(rows)} ({len(rows) / seen:.1%}), "
          f"{seen - len(rows)} missed, {extra} further boxes")
    if args.detector == "haar":
        for k, label in enumerate(["box side / chip side", "box centre x / chip", "box centre y / chip"]):
            _percentiles(label, a[:, k])
        print(f"in use: CHIP_SIDE = {CHIP_SIDE:.4f} (1/{1 / CHIP_SIDE:.3f}), CHIP_DROP = {CHIP_DROP:.3f}")
        return 0
    for k, label in enumerate(LANDMARKS):
        _percentiles(f"{label} x / chip", a[:, 2 * k])
        _percentiles(f"{label} y / chip", a[:, 2 * k + 1])
    print("measured CHIP_LANDMARKS =", np.array2string(np.median(a, 0).reshape(5, 2), precision=4,
                                                         separator=", "))
    print("in use   CHIP_LANDMARKS =", np.array2string(CHIP_LANDMARKS, precision=4, separator=", "))
    # the alignment each chip gets, with the landmarks in use: 1, 0 and 0 when the cut is the chip
    scale, angle, shift = [], [], []
    for row in a:
        m = similarity_transform(row.reshape(5, 2) * w, CHIP_LANDMARKS * w)
        scale.append(math.hypot(m[0, 0], m[1, 0]))
        angle.append(math.degrees(math.atan2(m[1, 0], m[0, 0])))
        centre = m[:, :2] @ [w / 2, h / 2] + m[:, 2]  # where the chip's centre lands in the cut
        shift.append(math.hypot(*(centre - [w / 2, h / 2])))
    _percentiles("aligned scale (1 = chip)", scale)
    _percentiles("aligned rotation (deg)", angle)
    _percentiles("aligned shift (px of 200)", shift)
    return 0


if __name__ == "__main__":
    sys.exit(main())
