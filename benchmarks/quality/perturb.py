"""Light and lens: how much a model loses on chips degraded the way real photos are.

    python -m benchmarks.quality.perturb [--model models/model.keras] [--split test] [--limit N]
                                 [--perturbations all|name,name] [--seed 0] [--markdown]

Each chip of the split is degraded by every perturbation of ``benchmarks/common/perturbations.py`` at
its fixed severity (brightness x0.5 and x1.6, contrast x0.5, casts red +25, blue -25 and
blue +25, grayscale, Gaussian blur sigma 2 px, Gaussian noise sigma 10/255, JPEG quality 25, the
face shrunk to 40 px and upscaled back; sizes stated for the 200 px chips) and predicted like the
clean chips, with ``detect=False`` (the chip path: the whole picture is the face crop, resized by
the predictor). Printed per perturbation: age MAE, CS@5 and gender accuracy with their change
against the clean chips, then MAE and gender accuracy by life stage (0-2 ... 60+) and gender.
Noise is drawn from ``--seed`` (chip by chip). Use ``--split val`` when choosing a training
setting (an augmentation); ``test`` only to report.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from agegender.prediction.predictor import Predictor
from benchmarks.common.chips import add_split_arguments, load_chips, machine
from benchmarks.common.grouped import group_table, overall_table, render, summarise
from benchmarks.common.perturbations import parse_names, perturb


def chip_predictions(predictor: Predictor, chips) -> tuple[np.ndarray, np.ndarray]:
    """(age in years, female 0/1) per chip through the chip path; NaN where a record has an error."""
    records = predictor.predict(chips, detect=False)
    age = np.array([np.nan if r["error"] else r["age"] for r in records], float)
    female = np.array([np.nan if r["error"] else float(r["gender"] == "female") for r in records])
    return age, female


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--perturbations", default="all", help="comma-separated names, or all")
    parser.add_argument("--seed", type=int, default=0, help="the subset (--limit) and the noise")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args(argv)
    try:
        names = parse_names(args.perturbations)
    except ValueError as exc:
        parser.error(str(exc))

    chips, labels = load_chips(args.source, args.labels, args.split, args.limit, args.seed)
    predictor = Predictor(args.model)
    results = {name: summarise(labels, *chip_predictions(predictor, perturb(chips, name, args.seed)))
               for name in names}
    base = results["clean"]
    print(f"{args.split}: {len(chips)} chips, model {args.model} ({predictor.info.family}, "
          f"{predictor.profile.name}), detect=False, seed {args.seed}; {machine()}")
    print(render(*overall_table([(n, r, base, None) for n, r in results.items()]), args.markdown))
    for key, title in (("mae", "age MAE (years)"), ("gender_accuracy", "gender accuracy")):
        print(f"\n{title} by life stage (true age) and gender; in brackets the change against clean")
        print(render(*group_table([(n, r, None if n == "clean" else base) for n, r in results.items()],
                                  key), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
