"""Training a model family from its recipe: the one mapping from settings to network, optimizer,
losses and input pipeline, used alike by the train stage, k-fold and the benchmarks.

Per-epoch metrics go to DVCLive, so ``dvc plots show`` draws learning curves. The weights of the
best validation epoch are restored before returning; with ``final_fit`` the model trains on
train+val for its fixed cosine schedule instead and keeps the last epoch's weights (choose the
schedule on val first, then refit). A recipe with ``fine_tune`` trains in two phases (frozen
base, then its last blocks unfrozen) through the same loop.
"""
from __future__ import annotations

import inspect
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from agegender.data.images import get_profile
from agegender.model import networks
from agegender.model.datasets import make_dataset, targets
from agegender.model.families import Family, get_family
from agegender.model.targets import balanced_sample_weights
from agegender.params import FineTune, ParamsError, Recipe

log = logging.getLogger(__name__)
MONITOR = "val_age_mae"  # early stopping, plateau schedule and the best epoch all watch this


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds plus deterministic TF kernels: same params, same model."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(family: str | Family, recipe: Recipe, seed: int) -> keras.Model:
    """The family's network (uncompiled), with the recipe's architecture, augmentation and precision.

    Under ``mixed_bfloat16`` layers compute in bfloat16 with float32 weights, except the float32
    heads; the layers keep their policy when the model is saved. Raises :class:`ParamsError` for an
    architecture key the family's builder does not take.
    """
    family = get_family(family) if isinstance(family, str) else family
    build = getattr(networks, family.builder)
    fixed = {"input_shape", "age_output", "augment", "seed", *getattr(build, "keywords", {})}
    accepted = set(inspect.signature(build).parameters) - fixed
    unknown = sorted(set(recipe.architecture) - accepted)
    if unknown:
        raise ParamsError(f"models.{family.name}.architecture.{unknown[0]}: not a setting of "
                          f"{family.builder}; it takes {sorted(accepted)}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(recipe.precision)  # layers take the policy when created
    try:
        return build(get_profile(family.profile).shape, family.age_output,
                     recipe.augment.model_dump(), seed, **recipe.architecture)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def make_optimizer(name: str, learning_rate, weight_decay: float = 0.0) -> keras.optimizers.Optimizer:
    optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                  "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    kwargs = {"weight_decay": weight_decay} if name == "adamw" else {}
    return optimizers[name](learning_rate=learning_rate, **kwargs)


def batches_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: the last, partial batch counts."""
    return -(-n_images // batch_size)


def learning_rate(recipe: Recipe, steps_per_epoch: int):
    """The constant rate for ``lr_schedule: plateau`` (ReduceLROnPlateau lowers it), or a schedule:
    ``cosine`` warms up linearly for one epoch, then decays to zero by the last epoch."""
    if recipe.lr_schedule == "plateau":
        return recipe.learning_rate
    warmup = steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        recipe.learning_rate / 10, decay_steps=max(1, recipe.epochs * steps_per_epoch - warmup),
        warmup_target=recipe.learning_rate, warmup_steps=warmup)


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


def compile_model(model: keras.Model, family: Family, recipe: Recipe, steps_per_epoch: int) -> None:
    """Optimizer (with its learning-rate schedule over ``recipe.epochs``), losses, loss weights and
    the age-MAE / gender-accuracy metrics the training curves show."""
    model.compile(
        optimizer=make_optimizer(recipe.optimizer, learning_rate(recipe, steps_per_epoch),
                                 recipe.weight_decay),
        loss={"age": family.age_output.loss,
              "gender": keras.losses.BinaryCrossentropy(label_smoothing=recipe.gender_label_smoothing)},
        loss_weights=recipe.loss_weights.model_dump(),
        metrics={"age": [family.age_output.mae_metric()], "gender": [gender_accuracy()]},
    )


def training_dataset(family: Family, recipe: Recipe, images: np.ndarray, labels: np.ndarray,
                     seed: int) -> tf.data.Dataset:
    """Shuffled training batches of (images, targets[, weights]) for uint8 images (N, S, S, C) and
    label rows (N, 3) [age, gender, race]: the recipe's batch size, class balance and mixup."""
    weights = None
    if recipe.class_balance:
        weights = {"age": balanced_sample_weights(labels[:, 0], family.age_output),
                   "gender": np.ones(len(labels), dtype=np.float32)}
    return make_dataset(images, targets(labels, family.age_output), recipe.batch_size, shuffle=True,
                        seed=seed, sample_weight=weights, mixup_alpha=recipe.mixup)


def training_phases(recipe: Recipe) -> list[tuple[str, int, Recipe]]:
    """The fit phases of a run: ``[(name, end_epoch, recipe the optimizer is compiled with)]``.

    One phase ("train") for most recipes. With ``fine_tune`` the base layer is frozen for
    ``fine_tune.frozen_epochs`` epochs with the recipe's own optimizer ("frozen"), then the layers
    named in ``fine_tune.unfreeze`` train with ``fine_tune``'s optimizer, learning rate and weight
    decay until ``epochs`` ("fine_tune").
    """
    ft = recipe.fine_tune
    if ft is None:
        return [("train", recipe.epochs, recipe)]
    frozen = min(ft.frozen_epochs, recipe.epochs)
    phases = [("frozen", frozen, recipe)] if frozen > 0 else []
    if recipe.epochs > frozen:
        tuned = recipe.model_copy(update={"optimizer": ft.optimizer, "learning_rate": ft.learning_rate,
                                          "weight_decay": ft.weight_decay})
        phases.append(("fine_tune", recipe.epochs, tuned))
    return phases


def set_trainable(model: keras.Model, fine_tune: FineTune | None, phase: str) -> None:
    """Freeze / unfreeze for a phase of :func:`training_phases`: in "frozen" the whole nested
    ``fine_tune.base`` layer is frozen; in "fine_tune" only its layers whose names start with one
    of ``fine_tune.unfreeze`` (e.g. block4_, block5_) train. Other phases change nothing."""
    if fine_tune is None or phase not in ("frozen", "fine_tune"):
        return
    base = model.get_layer(fine_tune.base)
    if phase == "frozen":
        base.trainable = False
        return
    prefixes = tuple(fine_tune.unfreeze)
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith(prefixes)


def subsample(images, labels, limit: int | None, seed: int):
    """At most ``limit`` rows, drawn at random without replacement (order kept); all when None."""
    if not limit or limit >= len(images):
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), int(limit), replace=False))
    return images[keep], labels[keep]


@dataclass
class Setup:
    """Everything a fit needs, built from one recipe: the compiled model and its datasets."""
    family: Family
    recipe: Recipe
    model: keras.Model
    train_data: tf.data.Dataset
    val_data: tf.data.Dataset | None
    train_images: int
    steps_per_epoch: int


def setup_training(family_name: str, recipe: Recipe, seed: int, train: tuple[np.ndarray, np.ndarray],
                   val: tuple[np.ndarray, np.ndarray] | None = None) -> Setup:
    """Seed, subsample, build, compile and make the datasets: the one place a recipe becomes a model,
    an optimizer and input pipelines (train stage, k-fold and benchmarks all come through here).

    ``train`` and ``val`` are (uint8 images (N, S, S, C), labels (N, 3) [age, gender, race]).
    With ``final_fit`` val joins the training data and no validation data is returned.
    """
    family = get_family(family_name)
    seed_everything(seed)
    x_train, y_train = subsample(*train, recipe.max_train_images, seed)
    if val is not None:
        val = subsample(*val, recipe.max_val_images, seed + 1)
    if recipe.final_fit and val is not None:
        x_train, y_train = np.concatenate([x_train, val[0]]), np.concatenate([y_train, val[1]])
        val = None
    train_data = training_dataset(family, recipe, x_train, y_train, seed)
    val_data = None if val is None else make_dataset(val[0], targets(val[1], family.age_output),
                                                     recipe.batch_size)
    steps = batches_per_epoch(len(x_train), recipe.batch_size)
    model = build_model(family, recipe, seed)
    _, first_end, first_recipe = training_phases(recipe)[0]
    compile_model(model, family, first_recipe.model_copy(update={"epochs": first_end}), steps)
    return Setup(family, recipe, model, train_data, val_data, len(x_train), steps)


def _live_callback(live):
    """DVCLive's Keras callback, but the Live run outlives one ``fit`` call (one per phase): the
    ``with Live(...)`` block in :func:`train_model` ends it after the last phase."""
    from dvclive.keras import DVCLiveCallback

    class PhaseLiveCallback(DVCLiveCallback):
        def on_train_end(self, logs=None):
            pass

    return PhaseLiveCallback(live=live)


def train_model(family_name: str, recipe: Recipe, seed: int, train: tuple[np.ndarray, np.ndarray],
                val: tuple[np.ndarray, np.ndarray], live_dir: str | Path,
                verbose: int = 2) -> tuple[keras.Model, dict]:
    """Train a family on (images, labels) splits; returns the model and a summary (epochs run,
    seconds, images/s, parameters, best validation age MAE or None after a final fit)."""
    from dvclive import Live

    if len(train[0]) == 0 or len(val[0]) == 0:
        raise ParamsError(f"train ({len(train[0])}) and val ({len(val[0])}) splits must both hold "
                          "images: add data or change the split fractions in params.yaml")
    setup = setup_training(family_name, recipe, seed, train, val)
    model = setup.model
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=MONITOR, patience=recipe.early_stopping_patience, mode="min",
        restore_best_weights=True, verbose=1)
    callbacks = []
    if recipe.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=MONITOR, factor=recipe.reduce_lr.factor, patience=recipe.reduce_lr.patience,
            mode="min", verbose=1))
    if setup.val_data is not None:
        callbacks.append(early_stopping)
    Path(live_dir).mkdir(parents=True, exist_ok=True)
    history: dict[str, list] = {}
    best_value, best_weights = float("inf"), None
    with Live(str(live_dir), dvcyaml=None, save_dvc_exp=False) as live:
        callbacks.append(_live_callback(live))
        start = time.perf_counter()
        initial_epoch = 0
        for i, (phase, end_epoch, phase_recipe) in enumerate(training_phases(recipe)):
            set_trainable(model, recipe.fine_tune, phase)
            if i > 0:  # the first phase was compiled by setup_training; a cosine schedule spans its phase
                compile_model(model, setup.family,
                              phase_recipe.model_copy(update={"epochs": end_epoch - initial_epoch}),
                              setup.steps_per_epoch)
            log.info("phase %s: epochs %d-%d of %d training images", phase, initial_epoch + 1,
                     end_epoch, setup.train_images)
            fitted = model.fit(setup.train_data, validation_data=setup.val_data,
                               initial_epoch=initial_epoch, epochs=end_epoch, callbacks=callbacks,
                               verbose=verbose)
            for key, values in fitted.history.items():
                history.setdefault(key, []).extend(values)
            # EarlyStopping restores the best epoch of this phase; keep the best over all phases
            if early_stopping.best is not None and early_stopping.best < best_value:
                best_value, best_weights = early_stopping.best, model.get_weights()
            initial_epoch = end_epoch
        seconds = time.perf_counter() - start
    if best_weights is not None:
        model.set_weights(best_weights)
    epochs_run = len(history["loss"])
    summary = {"model": family_name, "epochs_run": epochs_run,
               "best_val_age_mae": None if setup.val_data is None else round(min(history[MONITOR]), 4),
               "final_fit": recipe.final_fit, "train_seconds": round(seconds, 1),
               "train_images": setup.train_images,
               "train_images_per_second": round(setup.train_images * epochs_run / seconds, 1),
               "parameters": int(model.count_params()), "precision": recipe.precision}
    return model, summary
