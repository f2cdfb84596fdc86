"""A recipe becomes a compiled model: the one mapping from settings to network, optimizer,
losses and input pipeline, used alike by the train stage, k-fold and the benchmarks.

:func:`setup_training` returns a :class:`Setup` (compiled model, datasets, what it runs on); the
fit itself, resumable and logged to DVCLive, is :mod:`agegender.training.fit`'s. A recipe with
``fine_tune`` trains in two phases (frozen base, then its last blocks unfrozen):
:func:`training_phases` and :func:`set_trainable` say how. A transfer recipe with ``features:
cached`` trains its frozen phases as the head alone, from the features stage's cache
(:mod:`agegender.training.features`); its fine-tuning phase, if any, on the images. A recipe with
``progressive`` resizing fits the model behind a resize layer (:mod:`agegender.training.resizing`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from agegender import hardware
from agegender.data.arrays import concat_images
from agegender.model.build import build_model, seed_everything
from agegender.model.families import Family, get_family
from agegender.model.targets import balanced_sample_weights, group_sample_weights
from agegender.params import FineTune, Recipe
from agegender.training.datasets import make_dataset, targets
from agegender.training.resizing import epoch_sizes, resizable

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
    return make_dataset(images, targets(labels, family.age_output), recipe.batch_size, shuffle=True,
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
                  base: str | None = None) -> None:
    """Freeze / unfreeze for a phase of :func:`training_phases`: in "frozen" the whole nested
    base layer (``fine_tune.base``, else ``base``) is frozen; in "fine_tune" only its layers whose
    names start with one of ``fine_tune.unfreeze`` (e.g. block4_, block5_) train, batch
    normalisation excepted (it keeps its ImageNet statistics, in inference mode, as Keras advises
    for fine-tuning). Other phases change nothing."""
    name = fine_tune.base if fine_tune is not None else base
    if name is None or phase not in ("frozen", "fine_tune") or (phase == "fine_tune" and fine_tune is None):
        return
    layer_of_base = model.get_layer(name)
    if phase == "frozen":
        layer_of_base.trainable = False
        return
    prefixes = tuple(fine_tune.unfreeze)
    layer_of_base.trainable = True
    for layer in layer_of_base.layers:
        layer.trainable = (layer.name.startswith(prefixes)
                           and not isinstance(layer, keras.layers.BatchNormalization))


def subsample(images, labels, limit: int | None, seed: int):
    """At most ``limit`` rows, drawn at random without replacement (order kept); all when None."""
    if not limit or limit >= len(images):
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), int(limit), replace=False))
    return images[keep], labels[keep]


@dataclass
class Setup:
    """Everything a fit needs, built from one recipe: the compiled model and its datasets, and
    what it runs on (precision actually used, device, ``tf.distribute`` strategy). With cached
    features, ``head`` (the model's head as a model of its own, sharing its layers) trains in the
    frozen phases, on ``feature_split`` and ``val_features``."""
    family: Family
    recipe: Recipe
    model: keras.Model
    train_split: tuple  # (images, labels) after subsampling (and, in a final fit, + val)
    val_data: tf.data.Dataset | None
    seed: int
    steps_per_epoch: int
    strategy: tf.distribute.Strategy
    precision: str
    device: str
    isa: list[str] = field(default_factory=list)
    head: keras.Model | None = None
    feature_split: object | None = None  # FlipPairs of the training rows, as train_split's images
    val_features: tf.data.Dataset | None = None
    resized: keras.Model | None = None  # progressive resizing: the model behind its resize layer

    @property
    def epoch_sizes(self) -> list[int]:
        """The side each epoch trains the images at (progressive resizing; else the input's)."""
        return epoch_sizes(self.recipe, self.model.input_shape[1])

    @property
    def train_images(self) -> int:
        return len(self.train_split[0])

    def from_features(self, phase: str) -> bool:
        """This phase trains the head from cached features (every phase but a fine-tuning one)."""
        return self.head is not None and phase != "fine_tune"

    def phase_model(self, phase: str) -> keras.Model:
        """The model a phase fits: the head alone from cached features, else the whole model
        (behind its resize layer with progressive resizing)."""
        if self.from_features(phase):
            return self.head
        return self.resized or self.model

    def validation(self, phase: str) -> tf.data.Dataset | None:
        return self.val_features if self.from_features(phase) else self.val_data

    def train_data(self, first_epoch: int, end_epoch: int, phase: str = "train") -> tf.data.Dataset:
        """The training batches of epochs ``first_epoch`` .. ``end_epoch - 1``, one after another:
        of images, or of cached features (face or mirror image at random) in a head phase."""
        x = self.train_split[0]
        if self.from_features(phase):  # the mirror images' features only where flips are asked for
            x = self.feature_split if self.recipe.augment.flip else self.feature_split.faces
        return training_dataset(self.family, self.recipe, x, self.train_split[1], self.seed,
                                range(first_epoch, end_epoch))


def _rows(train, val, recipe: Recipe, seed: int):
    """Subsample train and val, then (final fit) join them: the same rows of images, of features."""
    x_train, y_train = subsample(*train, recipe.max_train_images, seed)
    if val is not None:
        val = subsample(*val, recipe.max_val_images, seed + 1)
    if recipe.final_fit and val is not None:
        x_train, y_train = concat_images([x_train, val[0]]), np.concatenate([y_train, val[1]])
        val = None
    return (x_train, y_train), val


def setup_training(family_name: str, recipe: Recipe, seed: int, train: tuple[np.ndarray, np.ndarray],
                   val: tuple[np.ndarray, np.ndarray] | None = None, strategy: str = "auto",
                   features=None) -> Setup:
    """Strategy, precision, seeds, subsample, build, compile and datasets: the one place a recipe
    becomes a model, an optimizer and input pipelines (train stage, k-fold and benchmarks all come
    through here).

    ``train`` and ``val`` are (uint8 images (N, S, S, C), labels (N, 3) [age, gender, race]);
    the images an array or ``ImageFiles`` (read from disk a batch at a time, never copied whole).
    With ``final_fit`` val joins the training data and no validation data is returned.
    ``strategy`` names a :func:`agegender.hardware.make_strategy` choice; the recipe's
    ``batch_size`` is the global batch, split across its replicas.

    ``features``: the features stage's :class:`~agegender.training.features.FeatureCache` of these
    splits, for a ``features: cached`` recipe: its base's weights go into the model and the
    frozen phases train the head from it. Without it such a recipe trains the same frozen model
    on the images (slower; k-fold does so).
    """
    family = get_family(family_name)
    dist = hardware.make_strategy(strategy)  # first: multi-worker set-up must precede other ops
    cpu, gpus = hardware.cpu_info(), hardware.gpu_info()
    precision = hardware.choose_precision(recipe.precision, cpu, gpus)
    seed_everything(seed)
    cached = features is not None and recipe.features == "cached" and family.pretrained is not None
    (x_train, y_train), val_rows = _rows(train, val, recipe, seed)
    val_data = None if val_rows is None else make_dataset(
        val_rows[0], targets(val_rows[1], family.age_output), recipe.batch_size)
    feature_split = val_features = None
    if cached:  # the same rows, of the features: the same subsample and final-fit join
        from agegender.training.features import FeaturesError

        for name, split in (("train", train), ("val", val)):
            if split is not None and len(features.split(name)) != len(split[1]):
                raise FeaturesError(f"{features.folder}: {len(features.split(name))} {name} features for "
                                    f"{len(split[1])} faces: run dvc repro features")
        (feature_split, _), fval = _rows((features.split("train"), train[1]),
                                         None if val is None else (features.split("val"), val[1]),
                                         recipe, seed)
        val_features = None if fval is None else make_dataset(
            fval[0], targets(fval[1], family.age_output), recipe.batch_size)
    steps = batches_per_epoch(len(x_train), recipe.batch_size)
    phase, first_end, first_recipe = training_phases(recipe)[0]
    with dist.scope():  # variables (weights, optimizer state) are created per replica
        model = build_model(family, recipe, seed, precision)
        head = None
        if cached:
            from agegender.training.features import head_model

            features.load_base(model)  # the base the features came from (a random one too)
            head = head_model(model)
        resized = resizable(model) if recipe.progressive else None
        first = head if cached and phase != "fine_tune" else (resized or model)
        compile_model(first, family, first_recipe.model_copy(update={"epochs": first_end}), steps)
    device = hardware.device_name(cpu, gpus)
    how = {(True, True): " (head from cached features)", (True, False): " (features: cached but no "
           "cache given: the frozen phases train on the images)"}.get((recipe.features == "cached", cached), "")
    log.info("training %s in %s on %s with %s%s", family.name, precision, device,
             hardware.strategy_name(dist), how)
    return Setup(family, recipe, model, (x_train, y_train), val_data, seed, steps, dist, precision,
                 device, hardware.isa_flags(cpu), head, feature_split, val_features, resized)
