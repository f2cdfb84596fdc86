"""Stage 3, train: fit the chosen model family on the cached arrays and save ``models/model.keras``.

Per-epoch metrics go to DVCLive (``reports/train``), so ``dvc plots show`` draws learning curves.
The weights of the best validation epoch are restored before saving.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import keras
import tensorflow as tf

from stages.config import load_params
from stages.datasets import make_dataset, targets
from stages.preprocess import load_split
from stages.registry import build_model, get_spec


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds plus deterministic TF kernels: same params, same model."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def make_optimizer(name: str, learning_rate: float, weight_decay: float = 0.0):
    optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                  "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    if name not in optimizers:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(optimizers)}")
    kwargs = {"weight_decay": weight_decay} if name == "adamw" else {}
    return optimizers[name](learning_rate=learning_rate, **kwargs)


def learning_rate(hp: dict, steps_per_epoch: int | None):
    """The constant rate for ``lr_schedule: plateau`` (ReduceLROnPlateau lowers it), or a schedule:
    ``cosine`` warms up linearly for one epoch, then decays to zero by the last epoch."""
    if hp.get("lr_schedule", "plateau") == "plateau":
        return hp["learning_rate"]
    if hp["lr_schedule"] != "cosine":
        raise ValueError(f"unknown lr_schedule {hp['lr_schedule']!r}; choose plateau or cosine")
    if not steps_per_epoch:
        raise ValueError("a cosine schedule needs the number of steps per epoch")
    warmup = steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        hp["learning_rate"] / 10, decay_steps=max(1, hp["epochs"] * steps_per_epoch - warmup),
        warmup_target=hp["learning_rate"], warmup_steps=warmup)


def compile_model(model: keras.Model, spec, hp: dict, steps_per_epoch: int | None = None) -> None:
    model.compile(
        optimizer=make_optimizer(hp.get("optimizer", "adam"), learning_rate(hp, steps_per_epoch),
                                 hp.get("weight_decay", 0.0)),
        loss={"age": spec.age_output.loss,
              "gender": keras.losses.BinaryCrossentropy(
                  label_smoothing=hp.get("gender_label_smoothing", 0.0))},
        loss_weights=hp.get("loss_weights", {"age": 1.0, "gender": 1.0}),
        metrics={"age": [spec.age_output.mae_metric()],
                 "gender": [keras.metrics.BinaryAccuracy(name="accuracy")]},
    )


def train(params: dict, data_dir: str | Path, model_out: str | Path, live_dir: str | Path) -> dict:
    """Train ``params['model']`` and save it. Returns a summary (epochs, seconds, parameter count)."""
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    name = params["model"]
    spec = get_spec(name)
    hp = {**params["train"], **(params.get("models", {}).get(name) or {})}
    seed = int(hp["seed"])
    seed_everything(seed)

    x_train, y_train = load_split(data_dir, "train")
    x_val, y_val = load_split(data_dir, "val")
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"train ({len(x_train)}) and val ({len(x_val)}) splits in {data_dir} must "
                         "both hold images: add data or change split fractions in params.yaml")
    train_ds = make_dataset(x_train, targets(y_train, spec.age_output), hp["batch_size"],
                            shuffle=True, seed=seed)
    val_ds = make_dataset(x_val, targets(y_val, spec.age_output), hp["batch_size"])

    model = build_model(name, hp.get("architecture"), hp.get("augment", {}), seed)
    compile_model(model, spec, hp, steps_per_epoch=-(-len(x_train) // hp["batch_size"]))
    monitor = "val_age_mae"
    callbacks = []
    if hp.get("lr_schedule", "plateau") == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=hp["reduce_lr"]["factor"], patience=hp["reduce_lr"]["patience"],
            mode="min", verbose=1))
    callbacks += [
        keras.callbacks.EarlyStopping(monitor=monitor, patience=hp["early_stopping_patience"], mode="min",
                                      restore_best_weights=True, verbose=1),
    ]
    Path(live_dir).mkdir(parents=True, exist_ok=True)
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False) as live:
        callbacks.append(DVCLiveCallback(live=live))
        start = time.perf_counter()
        history = model.fit(train_ds, validation_data=val_ds, epochs=hp["epochs"],
                            callbacks=callbacks, verbose=2)
        seconds = time.perf_counter() - start
    Path(model_out).parent.mkdir(parents=True, exist_ok=True)
    model.save(model_out)
    best = min(history.history[monitor])
    summary = {"model": name, "epochs_run": len(history.history[monitor]),
               "best_val_age_mae": round(best, 4), "train_seconds": round(seconds, 1),
               "train_images_per_second": round(len(x_train) * len(history.history[monitor]) / seconds, 1),
               "parameters": int(model.count_params())}
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--model-out", default="models/model.keras")
    parser.add_argument("--live-dir", default="reports/train")
    parser.add_argument("--summary-out", default="models/train_summary.json")
    args = parser.parse_args(argv)
    summary = train(load_params(args.params), args.data_dir, args.model_out, args.live_dir)
    Path(args.summary_out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"train: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
