"""Measure where the face detector's box sits on UTKFace's aligned chips: the margins predict uses.

    python benchmarks/chip_margin.py data/raw/UTKFace.tar.gz [--n 700] [--every 7]

Reads chips straight from the archive (or folder; nothing is written), pads each 200 x 200 chip
by 100 px of grey so that a face filling the chip can still be found, runs the detector of
``agegender.prediction.faces`` with its own settings, and prints the box side over the chip side and the box
centre as fractions of the chip. ``agegender.prediction.faces.CHIP_SIDE`` and ``CHIP_DROP`` come from these
figures: crop side = box side / (box side / chip side), crop centre = box centre moved down by
(0.5 - centre y) chip sides.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from agegender.prediction.faces import CHIP_DROP, CHIP_SIDE, HaarDetector  # noqa: E402
from agegender.data.images import decode  # noqa: E402
from agegender.data.source import iter_images  # noqa: E402

PAD = 100


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="UTKFace archive or folder")
    parser.add_argument("--n", type=int, default=700, help="chips to measure")
    parser.add_argument("--every", type=int, default=7, help="take every k-th chip of the archive")
    args = parser.parse_args(argv)

    detector = HaarDetector()
    rows, seen, missed = [], 0, 0
    for i, (name, data) in enumerate(iter_images(args.source)):
        if i % args.every:
            continue
        chip = decode(data, name).convert("L")
        w, h = chip.size
        padded = Image.new("L", (w + 2 * PAD, h + 2 * PAD), 128)
        padded.paste(chip, (PAD, PAD))
        boxes = detector(padded)
        seen += 1
        if not boxes:
            missed += 1
        else:
            b = max(boxes, key=lambda b: b.w)
            rows.append((b.w / w, (b.x - PAD + b.w / 2) / w, (b.y - PAD + b.h / 2) / h))
        if len(rows) >= args.n:
            break
    a = np.array(rows)
    print(f"{seen} chips, face found in {len(rows)} ({len(rows) / seen:.1%}), {missed} missed")
    for k, label in enumerate(["box side / chip side", "box centre x / chip", "box centre y / chip"]):
        p10, p50, p90 = np.percentile(a[:, k], [10, 50, 90])
        print(f"{label:22s} median {p50:.3f}  (p10 {p10:.3f}, p90 {p90:.3f})")
    print(f"in use: CHIP_SIDE = {CHIP_SIDE:.4f} (1/{1 / CHIP_SIDE:.3f}), CHIP_DROP = {CHIP_DROP:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
