"""Benchmark: training and inference images/second of a model family, how close that is to the
CPU's peak, where the time goes, and wall time per stage.

    python -m benchmarks.speed.pipeline_bench speed [--model NAME|all|A,B] [--images N] [--precision P[,P...]]
                                              [--framing F[,F...]] [--levers L[,L...]]
                                              [--threads INTRA[,INTER]] [--batch-size B]
        The CPU (model, ISA flags, native BF16 or not), GPUs, its matmul peak (float32, and
        bfloat16 where native), then per model, precision, framing and lever: training images/s
        (fit on random uint8 images of the model's profile, after a warm-up epoch), inference
        images/s, the network's FLOPs per image counted by TensorFlow's profiler (forward, and per
        training step), the GFLOP/s achieved and their fraction of the matmul peak; a summary table
        at the end. Levers (one row each; see LEVERS): base, xla, batch128, warp_once, no_framing,
        no_augment, files, cached, prefetch8, keras_bn; joined by "+", several at once
        (keras_bn: the network before the fused batch norm; keras_bn+batch128: both).
    python -m benchmarks.speed.pipeline_bench breakdown [--model NAME] [--images N]
        Where one slice of training time goes: a profiler trace of one epoch of N images grouped
        into convolutions, batch norm, dense, augmentation, optimizer, other ops and the input
        pipeline, beside ablation timings (re-framing off, augmentation off, cached batches).
    python -m benchmarks.speed.pipeline_bench stages
        Re-runs every stage of dvc.yaml in order (`dvc repro --force --single-item`), printing the
        wall time of each. Needs the data in place; it takes as long as a full `dvc repro`.

Figures depend on the machine (printed first) and on its load: report them with both.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# the families that train from scratch (the transfer families' speed is issue "Transfer learning
# that finishes on a laptop")
FROM_SCRATCH = ["compact", "multitask", "small_multitask", "sigmoid_bins", "relu_regression",
                "custom12", "ranges10"]
# lever -> what it changes against "base" (the recipe as the train stage runs it, batches from memory);
# levers combine with "+": keras_bn+batch128 is the network before the fused batch norm at batch 128
LEVERS = {
    "base": "the recipe as params.yaml sets it, batches gathered from an in-memory array",
    "xla": "the training step compiled by XLA (jit_compile), forced: Keras refuses it under op "
           "determinism and for RandomTranslation / RandomZoom, so this run has determinism off",
    "batch128": "batch 128, learning rate scaled by 128 / the recipe's batch",
    "warp_once": "augment.framing.warp_once: true (each re-framed face warped once)",
    "keras_bn": "Keras' own BatchNormalization (separate ops, unfused) in place of "
                "agegender.model.batch_norm.FusedBatchNormalization (the default before it)",
    "no_framing": "augment.framing.probability: 0",
    "no_augment": "every augmentation off (flip, translation, framing, ...)",
    "files": "images read from a .npy file a batch at a time (ImageFiles, as the train stage reads them)",
    "cached": "the epoch's batches cached in memory after the warm-up (no input pipeline work)",
    "prefetch8": "8 more batches prefetched on top of the pipeline's own 2",
}


@dataclass
class Row:
    model: str
    precision: str
    framing: float
    lever: str
    batch: int
    train_ips: float
    infer_ips: float
    forward_flops: float  # per image
    train_flops: float  # per image, per training step at this batch
    peak: float  # GFLOP/s of the matmul peak in this row's compute dtype
    peak_dtype: str = "float32"

    @property
    def train_gflops(self) -> float:
        return self.train_ips * self.train_flops / 1e9

    @property
    def fraction(self) -> float:
        return self.train_gflops / self.peak if self.peak else math.nan


def _recipe(base, precision, framing, lever, batch_size):
    parts = set(lever.split("+"))
    update = {"final_fit": False, "max_train_images": None, "precision": precision,
              "augment": base.augment.model_copy(update={
                  "framing": base.augment.framing.model_copy(update={
                      "probability": 0.0 if "no_framing" in parts else framing,
                      "warp_once": base.augment.framing.warp_once or "warp_once" in parts})})}
    if "no_augment" in parts:
        update["augment"] = base.augment.model_copy(update={
            "flip": False, "rotation": 0.0, "zoom": 0.0, "translation": 0.0, "contrast": 0.0,
            "framing": base.augment.framing.model_copy(update={"probability": 0.0})})
    batch = batch_size or base.batch_size
    if "batch128" in parts:
        batch = 128
        update["learning_rate"] = base.learning_rate * batch / (batch_size or base.batch_size)
    update["batch_size"] = batch
    return base.model_copy(update=update)


def measure_peaks(native_bf16: bool, n: int = 2048, tries: int = 3,
                  best: dict[str, float] | None = None) -> dict[str, float]:
    """GFLOP/s of a large matmul in float32, and bfloat16 where the CPU runs it natively: the best
    of ``tries`` (and of ``best``, earlier measurements), since other work on the cores only ever
    slows a measurement down."""
    from benchmarks.common.hardware_limits import matmul_peak

    peaks = dict(best or {})
    for dtype in ("float32", "bfloat16") if native_bf16 else ("float32",):
        peaks[dtype] = max([peaks.get(dtype, 0.0)] + [matmul_peak(dtype, n) for _ in range(tries)])
    return peaks


def speed(model_name: str | None, n_images: int, batch_size: int | None,
          precisions: list[str] | None = None, strategy: str | None = None,
          framings: list[float] | None = None, levers: list[str] | None = None,
          threads: tuple[int, int] | None = None, peak_size: int = 2048) -> list[Row]:
    """Training and inference images/s, FLOPs per image and fraction of peak of each model family
    in ``model_name`` (a name, ``all`` = :data:`FROM_SCRATCH`, or a comma-separated list; default
    the params.yaml model) on random images, once per precision (``auto`` resolves to what the
    train stage would use here), re-framing probability (default the recipe's) and lever
    (:data:`LEVERS`), after printing the hardware and its matmul peak. ``threads``: TensorFlow's
    (intra-op, inter-op) threads, 0 = its default. Returns the rows of the summary table."""
    import tensorflow as tf

    if threads:  # before TensorFlow runs anything: it fixes its thread pools then
        tf.config.threading.set_intra_op_parallelism_threads(threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(threads[1])

    from agegender import hardware
    from agegender.params import Recipe, load_params
    from benchmarks.common.hardware_limits import theoretical_peak

    params = load_params(ROOT / "params.yaml")
    names = (FROM_SCRATCH if model_name == "all" else model_name.split(",")) if model_name else [params.model]
    cpu, gpus = hardware.cpu_info(), hardware.gpu_info()
    print(f"cpu: {cpu.model}, {cpu.cores} cores; isa: {' '.join(hardware.isa_flags(cpu)) or '-'}; "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}; native bf16: "
          f"{'yes' if cpu.native_bf16() else 'no'}")
    print(f"gpu: {', '.join(f'{g.name} (compute {g.compute_capability})' for g in gpus) or 'none'}")
    print(f"threads: intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
          f"inter-op {tf.config.threading.get_inter_op_parallelism_threads() or 'default'}")
    peaks = measure_peaks(cpu.native_bf16(), peak_size)
    theory = theoretical_peak(cpu.cores, cpu.flags)
    print("peak (matmul %d x %d on these cores and threads): %s" % (
        peak_size, peak_size, ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items())))
    print(f"theoretical float32 peak: {f'{theory.gflops:.1f} GFLOP/s' if theory.gflops else 'not given'}"
          f" ({theory.how})")
    rows = []
    for name in names:
        base = params.models.get(name) or Recipe()
        rows += _speed_one(name, base, n_images, batch_size, precisions, strategy or params.train.strategy,
                           framings, levers or ["base"], peaks)
    # measured again after the runs: the table divides by the best peak seen (rows printed above
    # divide by the best before them)
    peaks = measure_peaks(cpu.native_bf16(), peak_size, best=peaks)
    for row in rows:
        row.peak = peaks["bfloat16" if row.peak_dtype == "bfloat16" else "float32"]
    print("peak, best seen over the run: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()))
    print_table(rows)
    return rows


@contextlib.contextmanager
def _batch_norm(keras_own: bool):
    """Networks built inside take Keras' unfused BatchNormalization when ``keras_own``."""
    import keras

    from agegender.model import networks

    fused = networks.BatchNorm
    networks.BatchNorm = keras.layers.BatchNormalization if keras_own else fused
    try:
        yield
    finally:
        networks.BatchNorm = fused


def _train_data(setup, lever: str):
    """One epoch of the setup's training batches, as the lever wants them fed."""
    data = setup.phases[0].train_data(0, 1)
    parts = set(lever.split("+"))
    if "cached" in parts:
        return data.cache()  # filled by the warm-up epoch, read from memory in the timed one
    if "prefetch8" in parts:
        return data.prefetch(8)
    return data


def _speed_one(name, base, n_images, batch_size, precisions, strategy, framings, levers, peaks):
    import tensorflow as tf

    from agegender import hardware
    from agegender.data.arrays import ImageFiles
    from agegender.data.images import get_profile
    from agegender.model.families import get_family
    from agegender.serving.inference import predict_outputs
    from agegender.training.setup import setup_training
    from benchmarks.common.hardware_limits import forward_flops, train_step_flops
    from benchmarks.common.face_arrays import random_faces

    family = get_family(name)
    x, labels = random_faces(get_profile(family.profile).shape, n_images)
    tmp = tempfile.TemporaryDirectory(prefix="speed_")
    rows, flops = [], {}
    runs = [(p, f, lv) for p in precisions or [base.precision]
            for f in framings or [base.augment.framing.probability] for lv in levers]
    for precision, framing, lever in runs:
        parts = set(lever.split("+"))
        if not parts <= set(LEVERS):
            raise SystemExit(f"unknown lever {lever!r}; choose from {', '.join(LEVERS)} "
                             f"(or several joined by '+')")
        recipe = _recipe(base, precision, framing, lever, batch_size)
        images = x
        if "files" in parts:
            import numpy as np
            np.save(Path(tmp.name) / "x.npy", x)
            images = ImageFiles([Path(tmp.name) / "x.npy"])
        # the same function as the train stage: model, optimizer, schedule, losses and input pipeline
        with _batch_norm("keras_bn" in parts):
            setup = setup_training(name, recipe, 0, (images, labels), strategy=strategy)
        model = setup.model
        if "xla" in parts:
            from tensorflow.python.framework import config as tf_config  # not in tf.config
            tf_config.disable_op_determinism()
            # Keras' setter refuses XLA under op determinism and for layers it marks
            # supports_jit=False (RandomTranslation, RandomZoom): force it to see what XLA gives
            model._jit_compile = True
            model.make_train_function(force=True)
        data = _train_data(setup, lever)
        try:
            model.fit(data, epochs=1, verbose=0)  # warm-up: graph tracing
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            train_ips = n_images / (time.perf_counter() - start)
        except Exception as exc:  # e.g. oneDNN capped below BF16 may refuse bfloat16 kernels
            print(f"{name} precision {precision} lever {lever}: training failed here: "
                  f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}")
            continue
        finally:
            if "xla" in parts:
                tf.config.experimental.enable_op_determinism()
        results = {}
        for tta in (False, True):
            predict_outputs(model, x[:256], 256, tta)  # warm-up
            start = time.perf_counter()
            predict_outputs(model, x, 256, tta)
            results[tta] = n_images / (time.perf_counter() - start)
        key = (model.dtype_policy.name, recipe.batch_size, bool(parts & {"no_framing", "no_augment"}),
               "keras_bn" in parts)
        if key not in flops:  # counted on the graphs, once per network and batch
            fwd = forward_flops(model, 1)
            step = train_step_flops(model, recipe.batch_size)
            flops[key] = fwd, step
        fwd, step = flops[key]
        compute = "bfloat16" if "bfloat16" in model.dtype_policy.name else "float32"
        row = Row(name, precision, framing, lever, recipe.batch_size, train_ips, results[False],
                  fwd.total, step.total / recipe.batch_size, peaks.get(compute, math.nan), compute)
        rows.append(row)
        print(f"model {name} ({model.count_params():,} parameters), profile "
              f"{family.profile}, batch {recipe.batch_size}, precision {precision} -> "
              f"{model.dtype_policy.name}, strategy {hardware.strategy_name(setup.strategy)}, "
              f"framing {framing}" + ("" if lever == "base" else f", lever {lever}")
              + (f" (jit_compile in effect: {model.jit_compile})" if "xla" in parts else ""))
        print(f"  training:  {train_ips:8.1f} images/s = {row.train_gflops:.1f} GFLOP/s = "
              f"{row.fraction:.1%} of the {compute} matmul peak")
        print(f"  inference: {results[False]:8.1f} images/s ({results[True]:.1f} with flip averaging)"
              f" = {results[False] * fwd.total / 1e9:.1f} GFLOP/s")
        print(f"  FLOPs (TensorFlow profiler, 2 per multiply-add): forward {fwd.total / 1e9:.3f} "
              f"GFLOP/image, training step {row.train_flops / 1e9:.3f} GFLOP/image at batch "
              f"{recipe.batch_size}; counted: {_shares(step.by_op)}")
    tmp.cleanup()
    return rows


def _shares(by_op: dict[str, int], top: int = 4) -> str:
    total = sum(by_op.values()) or 1
    parts = [f"{op} {n / total:.1%}" for op, n in list(by_op.items())[:top]]
    rest = list(by_op)[top:]
    return ", ".join(parts) + (f", {len(rest)} more op types" if rest else "") + \
        " (FusedBatchNorm, Relu, casts and image warps are not in its registry: 0)"


def print_table(rows: list[Row]) -> None:
    """The summary of a speed run: one row per model / precision / framing / lever."""
    if not rows:
        return
    print("\n| model | precision | framing | lever | batch | training images/s | GFLOP/image "
          "forward / training | training GFLOP/s | fraction of peak | inference images/s |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.model} | {r.precision} | {r.framing} | {r.lever} | {r.batch} | {r.train_ips:.1f} | "
              f"{r.forward_flops / 1e9:.3f} / {r.train_flops / 1e9:.3f} | {r.train_gflops:.1f} | "
              f"{r.fraction:.1%} | {r.infer_ips:.1f} |")


def breakdown(model_name: str | None, n_images: int, batch_size: int | None = None) -> None:
    """Where one slice of training goes: a profiler trace of one epoch of ``n_images`` random
    faces grouped by kind of work, and ablation timings of the same slice."""
    from agegender.data.images import get_profile
    from agegender.model.families import get_family
    from agegender.params import Recipe, load_params
    from agegender.training.setup import setup_training
    from benchmarks.common.op_profile import ORDER, profile_fit
    from benchmarks.common.face_arrays import random_faces

    params = load_params(ROOT / "params.yaml")
    name = model_name or params.model
    base = params.models.get(name) or Recipe()
    x, labels = random_faces(get_profile(get_family(name).profile).shape, n_images)
    framing = base.augment.framing.probability
    timings = {}
    for lever in ("base", "no_framing", "no_augment", "cached"):
        recipe = _recipe(base, base.precision, framing, lever, batch_size)
        if lever == "cached":  # no augmentation and no input pipeline: the network's step alone
            recipe = _recipe(base, base.precision, framing, "no_augment", batch_size)
        setup = setup_training(name, recipe, 0, (x, labels), strategy=params.train.strategy)
        data = _train_data(setup, lever)
        setup.model.fit(data, epochs=1, verbose=0)  # warm-up
        if lever == "base":
            wall, groups = profile_fit(setup.model, data)
            print(f"{name}, {setup.precision}, batch {recipe.batch_size}, {setup.steps_per_epoch} "
                  f"steps of {n_images} random faces: {wall:.2f} s under the profiler "
                  f"({n_images / wall:.1f} images/s)")
            total = sum(v for k, v in groups.items() if k != ORDER[-1]) or 1
            print("\n| where the op time goes (profiler trace) | op seconds | share of compute op time |")
            print("|---|---:|---:|")
            for g in ORDER:
                share = f"{groups[g] / total:.1%}" if g != ORDER[-1] else "(own threads)"
                print(f"| {g} | {groups[g]:.2f} | {share} |")
        start = time.perf_counter()
        setup.model.fit(data, epochs=1, verbose=0)
        timings[lever] = time.perf_counter() - start
    t = timings
    print("\n| ablation (same slice, no profiler) | wall s | images/s | saved vs the one above |")
    print("|---|---:|---:|---:|")
    labels_ = {"base": "recipe as trained", "no_framing": "re-framing off",
               "no_augment": "all augmentation off", "cached": "... and batches cached (no input pipeline)"}
    prev = None
    for k, label in labels_.items():
        saved = "" if prev is None else f"{(t[prev] - t[k]) / t[prev]:+.1%}".replace("+", "-", 1) \
            if t[prev] >= t[k] else f"{(t[k] - t[prev]) / t[prev]:+.1%}"
        print(f"| {label} | {t[k]:.2f} | {n_images / t[k]:.1f} | {saved} |")
        prev = k


def pipeline_stages() -> list[str]:
    """The stages of the default pipeline in dvc.yaml's order (its own order is a valid run order:
    each stage's inputs come from the stages above it)."""
    import yaml

    return list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])


def stage_times() -> None:
    dvc = [sys.executable, "-m", "dvc"]
    times = {}
    for stage in pipeline_stages():
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
    p.add_argument("--model", default=None,
                   help="model family, comma-separated families, or 'all' (the from-scratch "
                        "families; default: params.yaml model)")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions to compare, e.g. float32,mixed_bfloat16,auto "
                        "(default: the recipe's)")
    p.add_argument("--strategy", default=None, help="train.strategy to use (default: params)")
    p.add_argument("--framing", default=None,
                   help="comma-separated re-framing probabilities to compare, e.g. 0,0.5 "
                        "(default: the recipe's)")
    p.add_argument("--levers", default="base",
                   help=f"comma-separated levers, one row each: {', '.join(LEVERS)}, or 'all'")
    p.add_argument("--threads", default=None,
                   help="TensorFlow threads INTRA[,INTER] (0 = TensorFlow's default)")
    p.add_argument("--peak-size", type=int, default=2048, help="side of the peak matmul")
    b = sub.add_parser("breakdown")
    b.add_argument("--model", default=None)
    b.add_argument("--images", type=int, default=1280, help="faces in the profiled slice")
    b.add_argument("--batch-size", type=int, default=None)
    sub.add_parser("stages")
    args = parser.parse_args(argv)
    if args.what == "speed":
        threads = None
        if args.threads:
            t = [int(v) for v in args.threads.split(",")]
            threads = (t[0], t[1] if len(t) > 1 else 0)
        speed(args.model, args.images, args.batch_size,
              args.precision.split(",") if args.precision else None, args.strategy,
              [float(f) for f in args.framing.split(",")] if args.framing else None,
              list(LEVERS) if args.levers == "all" else args.levers.split(","), threads,
              args.peak_size)
    elif args.what == "breakdown":
        breakdown(args.model, args.images, args.batch_size)
    else:
        stage_times()
    return 0


if __name__ == "__main__":
    sys.exit(main())
