"""Stage 3, train: fit the chosen model family on the cached arrays and save ``models/model.keras``.

Per-epoch metrics go to DVCLive (``reports/train``), so ``dvc plots show`` draws learning curves.
The weights of the best validation epoch are restored before saving; with ``final_fit: true`` the
model trains on train+val for its fixed cosine schedule instead and keeps the last epoch's weights
(choose the schedule on val first, then refit). Models with a ``fine_tune``
section train in two phases (frozen base, then its last blocks unfrozen) through the same loop.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from stages.config import load_params, model_settings
from stages.datasets import make_dataset, targets
from stages.preprocess import load_split
from stages.registry import build_model, get_spec
from stages.targets import balanced_sample_weights


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


def batches_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: the last, partial batch counts."""
    return -(-n_images // batch_size)


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
                 "gender": [gender_accuracy()]},
    )


def gender_accuracy() -> keras.metrics.Metric:
    """Share of faces whose predicted P(female) falls on the side of 0.5 of their label. The label
    is rounded first: under mixup a blended label counts as the face with the larger share
    (Keras' BinaryAccuracy would score every blended label as wrong)."""
    def accuracy(y_true, y_pred):
        y_true = keras.ops.cast(y_true, "float32")
        hit = keras.ops.equal(keras.ops.round(y_true),
                              keras.ops.cast(keras.ops.greater(y_pred, 0.5), "float32"))
        return keras.ops.cast(hit, "float32")

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


def training_phases(hp: dict) -> list[dict]:
    """The fit phases of a run: ``[{"name", "end_epoch", "hp"}]``, each with the hyper-parameters
    its optimizer is compiled with.

    One phase for most models. With a ``fine_tune`` section (VGG16, seed 001 model B) the base
    layer is frozen for ``fine_tune.frozen_epochs`` epochs with the model's own optimizer, then the
    layers named in ``fine_tune.unfreeze`` are trained with ``fine_tune``'s optimizer, learning
    rate and weight decay until ``epochs``.
    """
    epochs = int(hp["epochs"])
    ft = hp.get("fine_tune")
    if not ft:
        return [{"name": "train", "end_epoch": epochs, "hp": hp}]
    frozen = min(int(ft["frozen_epochs"]), epochs)
    phases = [{"name": "frozen", "end_epoch": frozen, "hp": hp}] if frozen > 0 else []
    if epochs > frozen:
        tuned = {**hp, "optimizer": ft.get("optimizer", hp.get("optimizer", "adam")),
                 "learning_rate": ft["learning_rate"],
                 "weight_decay": ft.get("weight_decay", hp.get("weight_decay", 0.0))}
        phases.append({"name": "fine_tune", "end_epoch": epochs, "hp": tuned})
    return phases


def set_trainable(model: keras.Model, fine_tune: dict | None, phase: str) -> None:
    """Freeze / unfreeze for a phase of :func:`training_phases`: in "frozen" the whole nested
    ``fine_tune.base`` layer is frozen; in "fine_tune" only its layers whose names start with one
    of ``fine_tune.unfreeze`` (e.g. block4_, block5_) train. Other phases change nothing."""
    if not fine_tune or phase not in ("frozen", "fine_tune"):
        return
    base = model.get_layer(fine_tune["base"])
    if phase == "frozen":
        base.trainable = False
        return
    prefixes = tuple(fine_tune["unfreeze"])
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith(prefixes)


def subsample(images, labels, limit: int | None, seed: int):
    """At most ``limit`` rows, drawn at random without replacement (order kept); all when None."""
    if not limit or limit >= len(images):
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), int(limit), replace=False))
    return images[keep], labels[keep]


def _live_callback(live):
    """DVCLive's Keras callback, but the Live run outlives one ``fit`` call (one per phase): the
    ``with Live(...)`` block in :func:`train` ends it after the last phase."""
    from dvclive.keras import DVCLiveCallback

    class PhaseLiveCallback(DVCLiveCallback):
        def on_train_end(self, logs=None):
            pass

    return PhaseLiveCallback(live=live)


def train(params: dict, data_dir: str | Path, model_out: str | Path, live_dir: str | Path) -> dict:
    """Train ``params['model']`` and save it. Returns a summary (epochs, seconds, parameter count)."""
    from dvclive import Live

    name = params["model"]
    spec = get_spec(name)
    hp = model_settings(params, name)
    seed = int(hp["seed"])
    seed_everything(seed)

    x_train, y_train = subsample(*load_split(data_dir, "train"), hp.get("max_train_images"), seed)
    x_val, y_val = subsample(*load_split(data_dir, "val"), hp.get("max_val_images"), seed + 1)
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError(f"train ({len(x_train)}) and val ({len(x_val)}) splits in {data_dir} must "
                         "both hold images: add data or change split fractions in params.yaml")
    final_fit = bool(hp.get("final_fit"))
    if final_fit:
        # The schedule was chosen on val; now val is training data, so nothing may be picked on it
        # any more: a fixed cosine schedule, the last epoch's weights, no validation curves.
        if hp.get("lr_schedule", "plateau") != "cosine" or hp.get("fine_tune"):
            raise ValueError(f"model {name!r}: final_fit needs lr_schedule: cosine and no fine_tune "
                             "(a plateau schedule or a phase switch would read val, now training data)")
        x_train, y_train = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
    weights = None
    if hp.get("class_balance"):
        weights = {"age": balanced_sample_weights(y_train[:, 0], spec.age_output),
                   "gender": np.ones(len(y_train), dtype=np.float32)}
    train_ds = make_dataset(x_train, targets(y_train, spec.age_output), hp["batch_size"],
                            shuffle=True, seed=seed, sample_weight=weights,
                            mixup_alpha=float(hp.get("mixup", 0.0)))
    val_ds = None if final_fit else make_dataset(x_val, targets(y_val, spec.age_output), hp["batch_size"])

    model = build_model(name, hp.get("architecture"), hp.get("augment", {}), seed,
                        hp.get("precision"))
    monitor = "val_age_mae"
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=monitor, patience=hp["early_stopping_patience"], mode="min",
        restore_best_weights=True, verbose=1)
    callbacks = []
    if hp.get("lr_schedule", "plateau") == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=hp["reduce_lr"]["factor"], patience=hp["reduce_lr"]["patience"],
            mode="min", verbose=1))
    if not final_fit:
        callbacks.append(early_stopping)
    Path(live_dir).mkdir(parents=True, exist_ok=True)
    history: dict[str, list] = {}
    best_value, best_weights = float("inf"), None
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False) as live:
        callbacks.append(_live_callback(live))
        start = time.perf_counter()
        initial_epoch = 0
        for phase in training_phases(hp):
            set_trainable(model, hp.get("fine_tune"), phase["name"])
            # a cosine schedule spans the phase it is compiled for
            compile_model(model, spec, {**phase["hp"], "epochs": phase["end_epoch"] - initial_epoch},
                          steps_per_epoch=batches_per_epoch(len(x_train), hp["batch_size"]))
            fitted = model.fit(train_ds, validation_data=val_ds, initial_epoch=initial_epoch,
                               epochs=phase["end_epoch"], callbacks=callbacks, verbose=2)
            for key, values in fitted.history.items():
                history.setdefault(key, []).extend(values)
            # EarlyStopping restores the best epoch of this phase; keep the best over all phases
            if early_stopping.best is not None and early_stopping.best < best_value:
                best_value, best_weights = early_stopping.best, model.get_weights()
            initial_epoch = phase["end_epoch"]
        seconds = time.perf_counter() - start
    if best_weights is not None:
        model.set_weights(best_weights)
    Path(model_out).parent.mkdir(parents=True, exist_ok=True)
    model.save(model_out)
    epochs_run = len(history["loss"])
    summary = {"model": name, "epochs_run": epochs_run,
               "best_val_age_mae": None if final_fit else round(min(history[monitor]), 4),
               "final_fit": final_fit, "train_seconds": round(seconds, 1),
               "train_images": len(x_train),
               "train_images_per_second": round(len(x_train) * epochs_run / seconds, 1),
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
