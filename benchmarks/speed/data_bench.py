"""Benchmark: reading the cached image arrays from disk (ImageFiles) against holding them in memory.

    python -m benchmarks.speed.data_bench speed [--data-dir data/processed] [--images N] [--rounds R]
        Images/s of the train stage's input pipeline alone, then training images/s of the
        params.yaml model (built as the train stage builds it, via setup_training), on one split
        read in memory (np.load) and from disk (load_split): the same model, alternating epochs,
        after a warm-up epoch each. Without --data-dir: random
        uint8 images of the model's profile, written to a temporary folder.
    python -m benchmarks.speed.data_bench memory [--sizes-gb 2,8] [--in-memory-up-to-gb 2]
        For each size, writes a split of random uint8 images of that size to a temporary folder
        and runs one training epoch over all of it in a fresh process, printing that process'
        peak RSS against the split size: reading from disk (ImageFiles: positioned reads), from a
        memory map of the file (the alternative not chosen), and (for sizes up to
        --in-memory-up-to-gb) holding the split in memory. The epoch trains a tiny model (global
        average pooling and the two heads) through the train stage's own input pipeline (shuffle,
        mixup, class balance of the recipe), so it takes seconds, not hours, yet reads every image.

Figures depend on the machine: report them with the CPU printed first.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WAYS = {"disk": "from disk", "mmap": "mmap", "memory": "in memory"}
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _cpu_line() -> str:
    from agegender.hardware import cpu_info

    cpu = cpu_info()
    return f"cpu: {cpu.model}, {cpu.cores} cores"


def _status_mib() -> dict[str, float]:
    """This process' VmRSS, VmHWM (peak RSS), RssAnon and RssFile from /proc, in MiB ({} elsewhere)."""
    path = Path("/proc/self/status")
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024  # kB
    return out


def _write_split(folder: Path, n: int, shape: tuple[int, ...], seed: int = 0) -> None:
    """``train_images.npy`` of ``n`` random uint8 images of ``shape``, written in chunks (np.save's
    format), and ``train_labels.npy``."""
    import numpy as np

    from agegender.data.preprocessing import create_npy

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    offset = create_npy(folder / "train_images.npy", (n, *shape))
    with open(folder / "train_images.npy", "r+b") as f:
        f.seek(offset)
        for start in range(0, n, 8192):
            f.write(rng.integers(0, 256, (min(8192, n - start), *shape), dtype=np.uint8).tobytes())
    labels = np.stack([rng.integers(1, 100, n), rng.integers(0, 2, n), rng.integers(0, 5, n)], 1)
    np.save(folder / "train_labels.npy", labels.astype(np.int16))


def _recipe(batch_size: int | None):
    from agegender.params import Recipe, load_params

    params = load_params(ROOT / "params.yaml")
    update = {"final_fit": False, "max_train_images": None}
    if batch_size:
        update["batch_size"] = batch_size
    return params.model, (params.models.get(params.model) or Recipe()).model_copy(update=update)


def speed(data_dir: str | None, n_images: int | None, rounds: int, batch_size: int | None) -> None:
    """Training images/s of the default model, split in memory vs read from disk."""
    import numpy as np

    from agegender.data.arrays import load_split
    from agegender.data.images import get_profile
    from agegender.model.families import get_family
    from agegender.training.setup import setup_training

    print(_cpu_line())
    model_name, recipe = _recipe(batch_size)
    tmp = None
    if data_dir is None:
        tmp = tempfile.mkdtemp(prefix="data_bench_")
        data_dir = tmp
        _write_split(Path(tmp), n_images or 2048, get_profile(get_family(model_name).profile).shape)
    try:
        disk, labels = load_split(data_dir, "train")
        memory = np.load(Path(data_dir) / "train_images.npy")
        n = min(n_images or len(disk), len(disk))
        ways = {"in memory": (memory[:n], labels[:n]), "from disk": (disk[:n], labels[:n])}
        setup = setup_training(model_name, recipe, 0, ways["in memory"], strategy="one_device")
        print(f"model {model_name}, batch {recipe.batch_size}, precision {setup.precision}, "
              f"{n} images of {disk.shape[1:]} from {Path(data_dir).resolve()}/train_images.npy")

        def epoch(way) -> float:
            setup.phases[0].train_x, setup.phases[0].labels = ways[way]
            start = time.perf_counter()
            setup.phases[0].model.fit(setup.phases[0].train_data(0, 1), epochs=1, verbose=0)
            return n / (time.perf_counter() - start)

        def pipeline(way) -> float:  # the input pipeline alone: one epoch of batches, no model
            setup.phases[0].train_x, setup.phases[0].labels = ways[way]
            start = time.perf_counter()
            for _ in setup.phases[0].train_data(0, 1):
                pass
            return n / (time.perf_counter() - start)

        for what, run in (("input pipeline alone", pipeline), ("training", epoch)):
            for way in ways:  # warm-up: graph tracing, page cache
                run(way)
            rates = {way: [] for way in ways}
            for _ in range(rounds):  # alternating, so a busy moment of the machine hits both
                for way in ways:
                    rates[way].append(run(way))
            print(f"  {what}:")
            for way, values in rates.items():
                print(f"    {way:<10} {np.mean(values):9.1f} images/s "
                      f"(epochs: {', '.join(f'{v:.1f}' for v in values)})")
            print(f"    from disk / in memory: "
                  f"{np.mean(rates['from disk']) / np.mean(rates['in memory']):.3f}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


class _Mapped:
    """The alternative not chosen: batches read from a memory map of the file (``np.load(mmap_mode="r")``)."""

    def __init__(self, mapped):
        self.mapped, self.shape, self.dtype = mapped, mapped.shape, mapped.dtype

    def __len__(self) -> int:
        return len(self.mapped)

    def take(self, indices):
        return self.mapped[indices]  # a copy of the rows; the mapped pages stay resident


def epoch(data_dir: str, way: str, batch_size: int | None) -> None:
    """One training epoch of a tiny model over the whole split; prints a JSON line of memory use."""
    import keras
    import numpy as np

    from agegender.data.arrays import load_split
    from agegender.model.families import get_family
    from agegender.training.phases import compile_model, training_dataset
    from agegender.training.setup import batches_per_epoch

    model_name, recipe = _recipe(batch_size)
    family = get_family(model_name)
    out = family.age_output
    labels = np.load(Path(data_dir) / "train_labels.npy")
    images, _ = load_split(data_dir, "train")
    inputs = keras.Input(images.shape[1:], name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255.0)(inputs))
    model = keras.Model(inputs, {"age": keras.layers.Dense(out.units, "softmax" if out.kind == "distribution"
                                                           else out.activation, name="age")(x),
                                 "gender": keras.layers.Dense(1, "sigmoid", name="gender")(x)})
    compile_model(model, family, recipe, batches_per_epoch(len(labels), recipe.batch_size))
    before = _status_mib()
    if way == "memory":
        images = np.load(Path(data_dir) / "train_images.npy")
    elif way == "mmap":
        images = _Mapped(np.load(Path(data_dir) / "train_images.npy", mmap_mode="r"))
    start = time.perf_counter()
    model.fit(training_dataset(family, recipe, images, labels, 0, range(0, 1)), epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    after = _status_mib()
    print(json.dumps({"images": len(labels), "seconds": seconds, "rss_before_mib": before.get("VmRSS"),
                      "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      **{f"{k}_mib": v for k, v in after.items()}}))


def memory(sizes_gb: list[float], in_memory_up_to_gb: float, batch_size: int | None,
           tmp_dir: str | None) -> None:
    """Peak RSS of one training epoch in a fresh process against the split's size on disk."""
    import numpy as np

    from agegender.data.images import get_profile
    from agegender.model.families import get_family

    print(_cpu_line())
    model_name, recipe = _recipe(batch_size)
    shape = get_profile(get_family(model_name).profile).shape
    print(f"one epoch of a tiny model (global average pooling + heads; the {model_name} recipe's "
          f"input pipeline: batch {recipe.batch_size}, mixup {recipe.mixup}) over random "
          f"{'x'.join(map(str, shape))} uint8 images, each run in a fresh process; RSS in MiB")
    print(f"{'split on disk':>14} {'images':>9} {'read':>9} {'epoch s':>8} {'images/s':>9} "
          f"{'before':>7} {'peak RSS':>9} {'RssAnon':>8} {'RssFile':>8}")
    for size in sizes_gb:
        folder = Path(tempfile.mkdtemp(prefix="data_bench_", dir=tmp_dir))
        try:
            n = max(1, int(size * 1e9) // int(np.prod(shape)))
            _write_split(folder, n, shape)
            ways = ["disk", "mmap"] + (["memory"] if size <= in_memory_up_to_gb else [])
            for way in ways:
                cmd = [sys.executable, "-m", "benchmarks.speed.data_bench", "epoch", "--data-dir", str(folder),
                       "--way", way]
                if batch_size:
                    cmd += ["--batch-size", str(batch_size)]
                done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
                r = json.loads(done.stdout.strip().splitlines()[-1])
                on_disk = (folder / "train_images.npy").stat().st_size / 1e9
                print(f"{on_disk:11.3f} GB {r['images']:9d} {WAYS[way]:>9} "
                      f"{r['seconds']:8.1f} {r['images'] / r['seconds']:9.0f} {r['rss_before_mib']:7.0f} "
                      f"{r['maxrss_mib']:9.0f} {r.get('RssAnon_mib', 0):8.0f} {r.get('RssFile_mib', 0):8.0f}",
                      flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print("before: RSS after TensorFlow, the model and the labels, before the epoch; peak RSS: "
          "ru_maxrss of the process; RssAnon / RssFile: at the end of the epoch. A memory map's "
          "pages count in RssFile: page cache the kernel can reclaim, but RSS-based limits "
          "(containers, schedulers) and monitors count it")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--data-dir", default=None, help="folder with train_images.npy (default: random images)")
    p.add_argument("--images", type=int, default=None, help="first N images (default: all; 2048 random)")
    p.add_argument("--rounds", type=int, default=2, help="timed epochs each way")
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    p = sub.add_parser("memory")
    p.add_argument("--sizes-gb", default="2,8", help="comma-separated split sizes on disk, in GB")
    p.add_argument("--in-memory-up-to-gb", type=float, default=2.0,
                   help="also run the in-memory way for sizes up to this")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--tmp-dir", default=None, help="where to write the splits (default: the temp dir)")
    p = sub.add_parser("epoch", help="(internal) one epoch of the memory benchmark")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--way", choices=list(WAYS), required=True)
    p.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    if args.what == "speed":
        speed(args.data_dir, args.images, args.rounds, args.batch_size)
    elif args.what == "memory":
        memory([float(s) for s in args.sizes_gb.split(",")], args.in_memory_up_to_gb, args.batch_size,
               args.tmp_dir)
    else:
        epoch(args.data_dir, args.way, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
