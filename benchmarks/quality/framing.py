"""How much a model loses when faces are framed looser or tighter than UTKFace's chips.

    python -m benchmarks.quality.framing [--model models/model.keras] [--split test] [--limit N]

Each chip of the split is predicted as it is and re-framed three ways, all with ``detect=False``
(the whole picture is the face crop), and scored against its labels:

- ``shrink70_edge``: the chip shrunk to 70 % of its side, centred on a canvas of the original size,
  the border filled by replicating the chip's edge pixels;
- ``shrink70_black``: the same with a black border;
- ``crop85``: the centred 85 % of the chip (resized by the predictor like any crop).

Use ``--split val`` when choosing a training setting; ``test`` only to report.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image

from agegender.prediction.predictor import Predictor
from benchmarks.common.chips import add_split_arguments, load_chips, score


def shrink(chip: np.ndarray, factor: float, fill: str) -> np.ndarray:
    """``chip`` (H, W, 3) shrunk by ``factor`` and centred on a canvas of its own size."""
    h, w = chip.shape[:2]
    sw, sh = round(w * factor), round(h * factor)
    small = np.asarray(Image.fromarray(chip).resize((sw, sh), Image.Resampling.BOX))
    left, top = (w - sw) // 2, (h - sh) // 2
    pad = ((top, h - sh - top), (left, w - sw - left), (0, 0))
    return np.pad(small, pad, mode="edge") if fill == "edge" else np.pad(small, pad)


def centre_crop(chip: np.ndarray, factor: float) -> np.ndarray:
    h, w = chip.shape[:2]
    ch, cw = round(h * factor), round(w * factor)
    top, left = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(chip[top:top + ch, left:left + cw])


VARIANTS = {
    "chip": lambda c: c,
    "shrink70_edge": lambda c: shrink(c, 0.70, "edge"),
    "shrink70_black": lambda c: shrink(c, 0.70, "black"),
    "crop85": lambda c: centre_crop(c, 0.85),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    args = parser.parse_args(argv)

    chips, labels = load_chips(args.source, args.labels, args.split, args.limit)
    predictor = Predictor(args.model)
    results = {}
    for name, reframe in VARIANTS.items():
        results[name] = score(predictor.predict([reframe(c) for c in chips], detect=False), labels)
    base = results["chip"]
    print(f"{args.split}: {base['n']} faces, model {args.model} "
          f"({predictor.info.family}, {predictor.profile.name}), detect=False")
    print(f"{'framing':16s} {'age MAE':>8s} {'vs chip':>8s} {'gender':>8s} {'vs chip':>8s}")
    for name, r in results.items():
        print(f"{name:16s} {r['mae']:8.2f} {r['mae'] - base['mae']:+8.2f} "
              f"{r['gender_acc']:8.1%} {100 * (r['gender_acc'] - base['gender_acc']):+7.1f}pt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
