"""A run's fit phases, each one object: what it trains (the whole model, the model behind its resize
layer, or the head alone from cached features), on which data, which layers are trainable and how
it is compiled. :func:`agegender.training.setup.setup_training` builds them (and prepares the
first, so a Setup is ready to fit); :func:`agegender.training.fit.fit` only runs them, one after
another, resumable and logged.

Most recipes train in one phase ("train"). With ``fine_tune`` a transfer recipe trains its base
frozen ("frozen"), then its last blocks unfrozen ("fine_tune"); a ``features: cached`` recipe
trains its frozen phases as the head alone, from the features stage's cache.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from agegender.data.datasets import make_dataset
from agegender.model.families import Family
from agegender.model.targets import balanced_sample_weights, group_sample_weights, keras_targets
from agegender.params import FineTune, Recipe
from agegender.training import keras_compat, resizing
from agegender.training.flops import train_step_flops

log = logging.getLogger(__name__)


def make_optimizer(name: str, learning_rate, weight_decay: float = 0.0,
                   ema: float = 0.0) -> keras.optimizers.Optimizer:
    """The optimizer ``name``; with ``ema`` > 0 it keeps an exponential moving average of the
    weights (that momentum per step), which Keras swaps into the model when a fit ends."""
    optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                  "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    kwargs = {"weight_decay": weight_decay} if name == "adamw" else {}
    if ema:
        kwargs.update(use_ema=True, ema_momentum=ema)
    return optimizers[name](learning_rate=learning_rate, **kwargs)


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
                                 recipe.weight_decay, recipe.ema),
        loss={"age": family.age_output.loss,
              "gender": keras.losses.BinaryCrossentropy(label_smoothing=recipe.gender_label_smoothing)},
        loss_weights=recipe.loss_weights.model_dump(),
        metrics={"age": [family.age_output.mae_metric()], "gender": [gender_accuracy()]},
    )


def training_dataset(family: Family, recipe: Recipe, images, labels: np.ndarray,
                     seed: int, epochs: range) -> tf.data.Dataset:
    """Shuffled training batches of (images, targets[, weights]) for uint8 images (N, S, S, C) and
    label rows (N, 3) [age, gender, race]: the recipe's batch size, class and group balance and mixup, for
    the epochs in ``epochs`` one after another (each epoch's order depends on the seed and the
    epoch number only, so a resumed run sees what an uninterrupted one would)."""
    weights = None
    if recipe.class_balance or recipe.group_balance:
        group = (group_sample_weights(labels, recipe.group_balance) if recipe.group_balance
                 else np.ones(len(labels), dtype=np.float32))
        age = balanced_sample_weights(labels[:, 0], family.age_output) if recipe.class_balance else 1.0
        weights = {"age": (group * age).astype(np.float32), "gender": group}
    return make_dataset(images, keras_targets(labels, family.age_output), recipe.batch_size, shuffle=True,
                        seed=seed, sample_weight=weights, mixup_alpha=recipe.mixup, epochs=epochs)


def training_phases(recipe: Recipe) -> list[tuple[str, int, Recipe]]:
    """The fit phases of a run: ``[(name, end_epoch, recipe the optimizer is compiled with)]``.

    One phase ("train") for most recipes. With ``fine_tune`` the base layer is frozen for
    ``fine_tune.frozen_epochs`` epochs with the recipe's own optimizer ("frozen"), then the layers
    named in ``fine_tune.unfreeze`` train with ``fine_tune``'s optimizer, learning rate and weight
    decay until ``epochs`` ("fine_tune").
    """
    ft = recipe.fine_tune
    if ft is None:  # a cached-features recipe keeps the base frozen throughout
        return [("frozen" if recipe.features == "cached" else "train", recipe.epochs, recipe)]
    frozen = min(ft.frozen_epochs, recipe.epochs)
    phases = [("frozen", frozen, recipe)] if frozen > 0 else []
    if recipe.epochs > frozen:
        tuned = recipe.model_copy(update={"optimizer": ft.optimizer, "learning_rate": ft.learning_rate,
                                          "weight_decay": ft.weight_decay})
        phases.append(("fine_tune", recipe.epochs, tuned))
    return phases


def set_trainable(model: keras.Model, fine_tune: FineTune | None, phase: str,
                  base: str | None = None, top: tuple[str, ...] | list[str] = ()) -> None:
    """Freeze / unfreeze for a phase of :func:`training_phases`: in "frozen" the whole nested
    base layer (``fine_tune.base``, else ``base``) is frozen but for the layers named in ``top``
    (a ``cached_top`` recipe's, trained from the features cache); in "fine_tune" only its layers
    whose names start with one of ``fine_tune.unfreeze`` (e.g. block4_, block5_) train, batch
    normalisation excepted (it keeps its ImageNet statistics, in inference mode, as Keras advises
    for fine-tuning). Other phases change nothing."""
    name = fine_tune.base if fine_tune is not None else base
    if name is None or phase not in ("frozen", "fine_tune") or (phase == "fine_tune" and fine_tune is None):
        return
    layer_of_base = model.get_layer(name)
    if phase == "frozen":
        layer_of_base.trainable = bool(top)
        for layer in layer_of_base.layers if top else ():
            layer.trainable = layer.name in top
        return
    prefixes = tuple(fine_tune.unfreeze)
    layer_of_base.trainable = True
    for layer in layer_of_base.layers:
        layer.trainable = (layer.name.startswith(prefixes)
                           and not isinstance(layer, keras.layers.BatchNormalization))


@dataclass
class Phase:
    """One phase of a run, epochs ``first_epoch`` .. ``end_epoch - 1`` of the run's numbering.

    ``whole``: the run's model (its layers' trainability is set here); ``model``: what this phase
    fits (``whole``, ``whole`` behind its resize layer, or the head alone); ``recipe``: the run's
    recipe (data, batches, balance); ``optimizer_recipe``: what it compiles with (``fine_tune``'s
    optimizer in that phase), its schedule spanning this phase's epochs. ``train_x``: images, or
    cached features (a ``FlipPairs`` or its faces) of the same rows as ``labels``; ``validation``:
    batches of val images or features (None in a final fit); ``sizes``: each epoch's side with
    progressive resizing (None: the input's)."""
    name: str
    first_epoch: int
    end_epoch: int
    whole: keras.Model
    model: keras.Model
    family: Family
    recipe: Recipe
    optimizer_recipe: Recipe
    train_x: object
    labels: np.ndarray
    validation: tf.data.Dataset | None
    seed: int
    steps_per_epoch: int
    strategy: tf.distribute.Strategy
    from_features: bool = False
    sizes: list[int] | None = None
    prepared: bool = field(default=False, repr=False)

    def prepare(self) -> None:
        """The one place a phase's layers are made trainable or frozen and its model compiled (once:
        before a finished phase's weights are restored, as they are saved in its layout)."""
        if self.prepared:
            return
        # a cached_top recipe trains those layers in its frozen phase, from the cache or (k-fold,
        # no cache) on the images: the same layers either way
        set_trainable(self.whole, self.recipe.fine_tune, self.name, self.family.pretrained,
                      self.recipe.cached_top if self.name == "frozen" else ())
        with self.strategy.scope():  # the optimizer's variables are created per replica
            compile_model(self.model, self.family, self.optimizer_recipe, self.steps_per_epoch)
        self.prepared = True

    def train_data(self, first: int, end: int | None = None) -> tf.data.Dataset:
        """The training batches of epochs ``first`` .. ``end - 1`` (default: to the phase's end), one
        after another (each epoch's order from the seed and its number alone, so a resumed run sees
        what an uninterrupted one would)."""
        return training_dataset(self.family, self.recipe, self.train_x, self.labels, self.seed,
                                range(first, self.end_epoch if end is None else end))

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """What the phase's fit needs beyond the run's own callbacks: the resize schedule."""
        return [resizing.SizeSchedule(self.sizes)] if self.sizes else []

    def flops_per_face(self, epochs: range) -> float | None:
        """FLOPs per trained face of this phase's training step, averaged over the ``epochs`` it ran:
        with progressive resizing each epoch's is counted on the model at that epoch's size."""
        if not self.sizes:
            return _flops_per_face(self.model, self.recipe.batch_size)
        sizes = [self.sizes[e] for e in epochs]
        per_size = {}
        for side in sorted(set(sizes)):
            with keras_compat.any_input_size(self.whole), self.strategy.scope():
                counted = resizing.at_size(self.whole, side)
                compile_model(counted, self.family, self.recipe, self.steps_per_epoch)
                per_size[side] = _flops_per_face(counted, self.recipe.batch_size)
        if None in per_size.values() or not sizes:
            return None
        return sum(per_size[side] for side in sizes) / len(sizes)


def _flops_per_face(model: keras.Model, batch_size: int) -> float | None:
    """FLOPs of one training step of ``model`` (forward, losses, gradients, the optimizer's update)
    per face of a ``batch_size`` batch, counted from its traced graph (nothing runs); None where the
    graph cannot be traced outside the fit (logged)."""
    try:
        return train_step_flops(model, batch_size).total / batch_size
    except Exception as exc:  # e.g. a distribution strategy's replica context; the cost is then unknown
        log.warning("training FLOPs not counted (%s: %s)", type(exc).__name__, exc)
        return None
