"""Benchmark: training and inference images/second of a model family, and wall time per stage.

    python benchmarks/pipeline_bench.py speed [--model NAME] [--images N] [--precision P]
        Training images/s (fit on random uint8 images of the model's profile, after a warm-up
        epoch) and inference images/s (batched prediction, with and without flip averaging).
    python benchmarks/pipeline_bench.py stages
        Re-runs every stage of dvc.yaml in order (`dvc repro --force --single-item`), printing the
        wall time of each. Needs the data in place; it takes as long as a full `dvc repro`.

Figures depend on the machine: report them with the machine they came from (`nproc`).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STAGES = ["ingest", "preprocess", "train", "evaluate", "plot", "model_card"]


def speed(model_name: str, n_images: int, batch_size: int, precision: str | None = None) -> None:
    import numpy as np

    from stages.config import load_params, model_settings
    from stages.datasets import make_dataset, targets
    from stages.images import get_profile
    from stages.inference import predict_outputs
    from stages.registry import build_model, get_spec, profile_for
    from stages.train import batches_per_epoch, compile_model, seed_everything

    params = load_params(ROOT / "params.yaml")
    model_name = model_name or params["model"]
    hp = model_settings(params, model_name)
    seed_everything(0)
    spec = get_spec(model_name)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_images, *get_profile(profile_for(model_name)).shape), dtype=np.uint8)
    labels = np.stack([rng.integers(1, 100, n_images), rng.integers(0, 2, n_images),
                       rng.integers(0, 5, n_images)], 1).astype(np.int16)
    model = build_model(model_name, hp.get("architecture"), hp.get("augment", {}), 0,
                        precision or hp.get("precision"))
    compile_model(model, spec, hp, steps_per_epoch=batches_per_epoch(n_images, batch_size))
    data = make_dataset(x, targets(labels, spec.age_output), batch_size, shuffle=True, seed=0,
                        mixup_alpha=float(hp.get("mixup", 0.0)))
    model.fit(data, epochs=1, verbose=0)  # warm-up: graph tracing
    start = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    train_ips = n_images / (time.perf_counter() - start)
    results = {}
    for tta in (False, True):
        predict_outputs(model, x[:256], 256, tta)  # warm-up
        start = time.perf_counter()
        predict_outputs(model, x, 256, tta)
        results[tta] = n_images / (time.perf_counter() - start)
    print(f"machine: {os.cpu_count()} cores; model {model_name} ({model.count_params():,} parameters), "
          f"profile {spec.profile}, batch {batch_size}, {model.dtype_policy.name}")
    print(f"training:  {train_ips:8.1f} images/s")
    print(f"inference: {results[False]:8.1f} images/s ({results[True]:.1f} with flip averaging)")


def stage_times() -> None:
    dvc = [sys.executable, "-m", "dvc"]
    times = {}
    for stage in STAGES:
        start = time.perf_counter()
        subprocess.run(dvc + ["repro", "--force", "--single-item", stage], cwd=ROOT, check=True)
        times[stage] = time.perf_counter() - start
    print("\nstage wall times (s):")
    for stage, seconds in times.items():
        print(f"  {stage:<11}{seconds:8.1f}")
    print(f"  {'total':<11}{sum(times.values()):8.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--model", default=None, help="model family (default: params.yaml model)")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default=None, help="float32 or mixed_bfloat16 (default: params)")
    sub.add_parser("stages")
    args = parser.parse_args(argv)
    if args.what == "speed":
        speed(args.model, args.images, args.batch_size, args.precision)
    else:
        stage_times()
    return 0


if __name__ == "__main__":
    sys.exit(main())
