"""Benchmark: training and inference images/second of a model family, and wall time per stage.

    python benchmarks/pipeline_bench.py speed [--model NAME] [--images N] [--precision P[,P...]]
                                              [--framing F[,F...]]
        The CPU (model, ISA flags, native BF16 or not), GPUs, then for each precision: training
        images/s (fit on random uint8 images of the model's profile, after a warm-up epoch) and
        inference images/s (batched prediction, with and without flip averaging).
    python benchmarks/pipeline_bench.py stages
        Re-runs every stage of dvc.yaml in order (`dvc repro --force --single-item`), printing the
        wall time of each. Needs the data in place; it takes as long as a full `dvc repro`.

Figures depend on the machine: report them with the machine they came from (printed first).
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


def speed(model_name: str | None, n_images: int, batch_size: int | None,
          precisions: list[str] | None = None, strategy: str | None = None,
          framings: list[float] | None = None) -> None:
    """Training and inference images/s of the model family on random images, once per precision
    (``auto`` resolves to what the train stage would use here) and re-framing probability
    (``augment.framing.probability``; default the recipe's), after printing the hardware."""
    import numpy as np

    from agegender.data.images import get_profile
    from agegender.model import hardware
    from agegender.model.families import get_family
    from agegender.model.inference import predict_outputs
    from agegender.model.training import setup_training
    from agegender.params import Recipe, load_params

    params = load_params(ROOT / "params.yaml")
    model_name = model_name or params.model
    base = params.models.get(model_name) or Recipe()
    strategy = strategy or params.train.strategy
    cpu, gpus = hardware.cpu_info(), hardware.gpu_info()
    print(f"cpu: {cpu.model}, {cpu.cores} cores; isa: {' '.join(hardware.isa_flags(cpu)) or '-'}; "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}; native bf16: "
          f"{'yes' if cpu.native_bf16() else 'no'}")
    print(f"gpu: {', '.join(f'{g.name} (compute {g.compute_capability})' for g in gpus) or 'none'}")
    rng = np.random.default_rng(0)
    shape = get_profile(get_family(model_name).profile).shape
    x = rng.integers(0, 256, (n_images, *shape), dtype=np.uint8)
    labels = np.stack([rng.integers(1, 100, n_images), rng.integers(0, 2, n_images),
                       rng.integers(0, 5, n_images)], 1).astype(np.int16)
    runs = [(p, f) for p in precisions or [base.precision]
            for f in framings or [base.augment.framing.probability]]
    for precision, framing in runs:
        update = {"final_fit": False, "max_train_images": None, "precision": precision,
                  "augment": base.augment.model_copy(update={
                      "framing": base.augment.framing.model_copy(update={"probability": framing})})}
        if batch_size:
            update["batch_size"] = batch_size
        recipe = base.model_copy(update=update)
        # the same function as the train stage: model, optimizer, schedule, losses and input pipeline
        setup = setup_training(model_name, recipe, 0, (x, labels), strategy=strategy)
        model = setup.model
        data = setup.train_data(0, 1)  # one epoch of batches, as the train stage feeds them
        try:
            model.fit(data, epochs=1, verbose=0)  # warm-up: graph tracing
        except Exception as exc:  # e.g. oneDNN capped below BF16 may refuse bfloat16 kernels
            print(f"precision {precision}: training failed here: {type(exc).__name__}: "
                  f"{str(exc).strip().splitlines()[-1][:200]}")
            continue
        start = time.perf_counter()
        model.fit(data, epochs=1, verbose=0)
        train_ips = n_images / (time.perf_counter() - start)
        results = {}
        for tta in (False, True):
            predict_outputs(model, x[:256], 256, tta)  # warm-up
            start = time.perf_counter()
            predict_outputs(model, x, 256, tta)
            results[tta] = n_images / (time.perf_counter() - start)
        print(f"model {model_name} ({model.count_params():,} parameters), profile "
              f"{get_family(model_name).profile}, batch {recipe.batch_size}, precision {precision} -> "
              f"{model.dtype_policy.name}, strategy {hardware.strategy_name(setup.strategy)}, "
              f"framing {framing}")
        print(f"  training:  {train_ips:8.1f} images/s")
        print(f"  inference: {results[False]:8.1f} images/s ({results[True]:.1f} with flip averaging)")


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
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions to compare, e.g. float32,mixed_bfloat16,auto "
                        "(default: the recipe's)")
    p.add_argument("--strategy", default=None, help="train.strategy to use (default: params)")
    p.add_argument("--framing", default=None,
                   help="comma-separated re-framing probabilities to compare, e.g. 0,0.5 "
                        "(default: the recipe's)")
    sub.add_parser("stages")
    args = parser.parse_args(argv)
    if args.what == "speed":
        speed(args.model, args.images, args.batch_size,
              args.precision.split(",") if args.precision else None, args.strategy,
              [float(f) for f in args.framing.split(",")] if args.framing else None)
    else:
        stage_times()
    return 0


if __name__ == "__main__":
    sys.exit(main())
