"""A training run in its own process, for the tests of resuming and of tf.distribute strategies.

    python tests/helpers/train_job.py OUT_DIR [--strategy S] [--logical-cpus N] [--kill-after-epoch K]
                              [--epoch-seconds T] [--epochs E] [--ema M] [--progressive SIZE:EPOCHS]

Trains the compact family for 3 epochs (final fit) on small synthetic arrays with a backup in
OUT_DIR/backup, saves OUT_DIR/model.keras, the summary and the predictions on fixed faces
(OUT_DIR/predictions.npy). ``--kill-after-epoch K`` ends the process abruptly after epoch K
(counting from 1), as a crash or Ctrl-C would; ``--logical-cpus N`` splits the CPU into N
logical devices before TensorFlow starts (for MirroredStrategy without GPUs); ``--epoch-seconds T``
makes every epoch last at least T seconds longer (a sleep as it begins), so training time is known.
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def job_command(out, *options) -> list[str]:
    """The command line that runs this script into ``out`` with ``options``."""
    return [sys.executable, __file__, str(out), *options]


def job_env(env: dict | None = None) -> dict:
    """The environment a job runs in: this one, TensorFlow's log quiet, then ``env``."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}


def run_job(out, *options, env=None, timeout=300) -> subprocess.CompletedProcess:
    """This script in a process of its own (a killed run must really die; logical devices must be
    set before TensorFlow starts), TensorFlow's log quiet, bounded in time."""
    return subprocess.run(job_command(out, *options), env=job_env(env), capture_output=True, text=True,
                          timeout=timeout)


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """``result`` of :func:`run_job`, asserted to have exited 0 (its output's tail if not)."""
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def synthetic(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 72, 72, 3), dtype=np.uint8)
    labels = np.stack([rng.integers(1, 90, n), rng.integers(0, 2, n), np.zeros(n)], 1)
    return images, labels.astype(np.int16)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--logical-cpus", type=int, default=0)
    parser.add_argument("--kill-after-epoch", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--epoch-seconds", type=float, default=0.0)
    parser.add_argument("--ema", type=float, default=0.0, help="the recipe's weight averaging momentum")
    parser.add_argument("--progressive", default="", help="SIZE:EPOCHS, the recipe's progressive resizing")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    if args.logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)
    class Job(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            time.sleep(args.epoch_seconds)

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == args.kill_after_epoch:
                os._exit(3)  # no clean-up, no exception: as a killed process

    if args.kill_after_epoch or args.epoch_seconds:
        fit = keras.Model.fit
        keras.Model.fit = lambda self, *a, callbacks=(), **k: fit(self, *a, callbacks=[*callbacks, Job()], **k)

    from agegender.params import Recipe
    from agegender.serving.saved import ModelInfo, save_model
    from agegender.training.fit import train_model

    recipe = Recipe(epochs=args.epochs, batch_size=8, architecture={"stage_blocks": [1, 1, 1, 1]},
                    final_fit=True, mixup=0.2, precision="float32", ema=args.ema,
                    progressive=[dict(zip(("size", "epochs"), map(int, args.progressive.split(":"))))]
                    if args.progressive else [],
                    augment={"flip": True, "translation": 0.06})
    args.out.mkdir(parents=True, exist_ok=True)
    model, summary = train_model("compact", recipe, 0, synthetic(32, 0), synthetic(8, 1),
                                 args.out / "live", verbose=0, strategy=args.strategy,
                                 backup_dir=args.out / "backup")
    save_model(model, args.out / "model.keras", ModelInfo.for_family("compact", summary.precision))
    summary.write(args.out / "summary.json")
    np.save(args.out / "predictions.npy", model.predict(synthetic(8, 2)[0], verbose=0)["age"])
    np.save(args.out / "weights.npy", np.concatenate([np.ravel(w) for w in model.trainable_weights]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
