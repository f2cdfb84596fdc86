"""How fast ``stages.predict`` runs: images per second for face crops and for photos with detection.

    python -m benchmarks.speed.predict_speed [--model models/model.keras] [--crops 512] [--photos 64]

Writes JPEG files to a temporary folder and times the whole path a user gets (read, decode, find
faces, crop, resize, batched inference, records), after one warm-up call. Crops are 200 x 200
like UTKFace chips, read with ``--no-detect``. Photos are 1280 x 720 with two faces: matplotlib's
sample portrait (a real photograph shipped inside the package) pasted twice onto a background of
smooth random blobs (pixel noise would be a worst case for the cascade, which then has to look
further at every window); without the portrait they have no face, which still times the search. Without a trained model an
untrained one of ``--model-name`` is timed, built with its architecture and precision from
params.yaml: speed does not depend on the weights.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from agegender.faces.registry import make_detector  # noqa: E402
from agegender.model.build import build_model  # noqa: E402
from agegender.params import Recipe, load_params  # noqa: E402
from agegender.prediction.predictor import Predictor  # noqa: E402
from agegender.serving.saved import ModelInfo  # noqa: E402


def _portrait():
    try:
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).convert("RGB")
    except Exception:
        return None


def write_inputs(folder: Path, n_crops: int, n_photos: int, seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    crops, photos = [], []
    for i in range(n_crops):
        path = folder / f"crop_{i:05d}.jpg"
        arr = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
        Image.fromarray(arr).save(path, quality=90)
        crops.append(path)
    portrait = _portrait()
    for i in range(n_photos):
        blobs = Image.fromarray(rng.integers(0, 255, (45, 80, 3), dtype=np.uint8))
        canvas = blobs.resize((1280, 720), Image.Resampling.BICUBIC)
        if portrait is not None:
            canvas.paste(portrait.resize((341, 400)), (100 + i % 50, 120))
            canvas.paste(portrait.resize((256, 300)), (800, 250 + i % 40))
        path = folder / f"photo_{i:05d}.jpg"
        canvas.save(path, quality=90)
        photos.append(path)
    return crops, photos


def timed(predictor: Predictor, paths: list, detect: bool) -> tuple[float, float, list]:
    """Wall seconds, cores kept busy on average (process CPU time / wall time), records."""
    predictor.predict(paths[: min(8, len(paths))], detect=detect)  # warm-up: graph tracing
    start, cpu = time.perf_counter(), time.process_time()
    records = predictor.predict(paths, detect=detect)
    seconds = time.perf_counter() - start
    return seconds, (time.process_time() - cpu) / seconds, records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/model.keras")
    parser.add_argument("--model-name", default="compact")
    parser.add_argument("--crops", type=int, default=512)
    parser.add_argument("--photos", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--tta", action="store_true", help="also predict each face mirrored")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default: cores)")
    parser.add_argument("--detectors", default="mtcnn,haar",
                        help="face detectors to time on the photos, comma-separated")
    args = parser.parse_args(argv)

    if Path(args.model).is_file():
        predictor = Predictor(args.model, batch_size=args.batch_size, tta=args.tta, workers=args.workers)
    else:  # the same builder as training, with the recipe's architecture and precision
        params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
        recipe = params.models.get(args.model_name) or Recipe()
        model = build_model(args.model_name, recipe, 0)
        predictor = Predictor(model, info=ModelInfo.for_family(args.model_name, recipe.precision),
                              batch_size=args.batch_size, tta=args.tta, workers=args.workers)
    which = args.model if Path(args.model).is_file() else f"untrained {args.model_name}"
    print(f"model: {which} ({predictor.info.family}, {predictor.profile.name}), batch "
          f"{args.batch_size}, tta {args.tta}, {predictor.workers} worker threads, "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        crops, photos = write_inputs(Path(tmp), args.crops, args.photos)
        if args.crops:
            seconds, cores, records = timed(predictor, crops, detect=False)
            print(f"crops  (200x200 JPEG, --no-detect): {len(crops)} images in {seconds:.2f} s = "
                  f"{len(crops) / seconds:.1f} images/s, {cores:.2f} cores busy")
        for name in args.detectors.split(",") if args.photos else []:
            predictor.detector = make_detector(name)
            seconds, cores, records = timed(predictor, photos, detect=True)
            faces = sum(1 for r in records if not r["error"])
            print(f"photos (1280x720 JPEG, {name} detection): {len(photos)} images in {seconds:.2f} s = "
                  f"{len(photos) / seconds:.1f} images/s, {faces / seconds:.1f} faces/s "
                  f"({faces} faces found), {cores:.2f} cores busy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
