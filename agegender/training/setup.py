"""A recipe becomes a model ready to fit: the one mapping from settings to network, data and
phases, used alike by the train stage, k-fold and the benchmarks.

:func:`setup_training` returns a :class:`Setup`: the model, its rows of training and validation
data, what it runs on, and its :class:`~agegender.training.phases.Phase` objects (the first one
prepared: layers frozen or not, compiled), which :mod:`agegender.training.fit` runs, resumable and
logged to DVCLive. A transfer recipe with ``features: cached`` trains its frozen phases as the head
alone, from the features stage's cache (:mod:`agegender.training.features`); its fine-tuning phase,
if any, on the images. A recipe with ``progressive`` resizing fits the model behind a resize layer
(:mod:`agegender.training.resizing`).
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
from agegender.data.datasets import make_dataset
from agegender.model.families import Family, get_family
from agegender.model.targets import keras_targets
from agegender.params import Recipe
from agegender.training.phases import Phase, training_phases
from agegender.training.resizing import epoch_sizes, resizable

log = logging.getLogger(__name__)


def batches_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimizer steps in one epoch: the last, partial batch counts."""
    return -(-n_images // batch_size)


def subsample(images, labels, limit: int | None, seed: int):
    """At most ``limit`` rows, drawn at random without replacement (order kept); all when None."""
    if not limit or limit >= len(images):
        return images, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(images), int(limit), replace=False))
    return images[keep], labels[keep]


@dataclass
class Setup:
    """Everything a fit needs, built from one recipe: the model, its training rows (after
    subsampling; in a final fit + val) and validation batches, what it runs on (precision actually
    used, device, ``tf.distribute`` strategy) and its :attr:`phases`, in order. With cached
    features, ``head`` (the model's head as a model of its own, sharing its layers) is what the
    frozen phases fit; with progressive resizing, ``resized`` (the model behind its resize layer)."""
    family: Family
    recipe: Recipe
    model: keras.Model
    train_split: tuple  # (images, labels)
    val_data: tf.data.Dataset | None
    seed: int
    steps_per_epoch: int
    strategy: tf.distribute.Strategy
    precision: str
    device: str
    isa: list[str] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    head: keras.Model | None = None
    resized: keras.Model | None = None

    @property
    def train_images(self) -> int:
        return len(self.train_split[0])


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
    """Strategy, precision, seeds, subsample, build, datasets and phases: the one place a recipe
    becomes a model, its phases and input pipelines (train stage, k-fold and benchmarks all come
    through here).

    ``train`` and ``val`` are (uint8 images (N, S, S, C), labels (N, 3) [age, gender, race]);
    the images an array or ``ImageFiles`` (read from disk a batch at a time, never copied whole).
    With ``final_fit`` val joins the training data and no validation data is returned.
    ``strategy`` names a :func:`agegender.hardware.make_strategy` choice; the recipe's
    ``batch_size`` is the global batch, split across its replicas.

    ``features``: the features stage's :class:`~agegender.training.features.FeatureCache` of these
    splits, for a ``features: cached`` recipe: its base's weights go into the model and the
    frozen phases train the head (and a ``cached_top`` recipe's last base layers) from it. Without
    it such a recipe trains the same layers on the images (slower; k-fold does so).
    """
    family = get_family(family_name)
    dist = hardware.make_strategy(strategy)  # first: multi-worker set-up must precede other ops
    cpu, gpus = hardware.cpu_info(), hardware.gpu_info()
    precision = hardware.choose_precision(recipe.precision, cpu, gpus, cpu_bf16=family.cpu_bf16)
    seed_everything(seed)
    cached = features is not None and recipe.features == "cached" and family.pretrained is not None
    (x_train, y_train), val_rows = _rows(train, val, recipe, seed)
    val_data = None if val_rows is None else make_dataset(
        val_rows[0], keras_targets(val_rows[1], family.age_output), recipe.batch_size)
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
            fval[0], keras_targets(fval[1], family.age_output), recipe.batch_size)
    steps = batches_per_epoch(len(x_train), recipe.batch_size)
    with dist.scope():  # variables (weights, optimizer state) are created per replica
        model = build_model(family, recipe, seed, precision)
        head = None
        if cached:
            features.load_base(model)  # the base the features came from (a random one too)
            head = features.head(model)  # with cached_top, the base's last layers then the head
        resized = resizable(model) if recipe.progressive else None
    phases, first_epoch = [], 0
    for name, end_epoch, optimizer_recipe in training_phases(recipe):
        from_features = head is not None and name != "fine_tune"
        x = x_train
        if from_features:  # the mirror images' features only where flips are asked for
            x = feature_split if recipe.augment.flip else feature_split.faces
        phases.append(Phase(
            name, first_epoch, end_epoch, model, head if from_features else (resized or model), family,
            recipe, optimizer_recipe.model_copy(update={"epochs": end_epoch - first_epoch}), x, y_train,
            val_features if from_features else val_data, seed, steps, dist, from_features,
            epoch_sizes(recipe, model.input_shape[1]) if resized is not None and not from_features else None))
        first_epoch = end_epoch
    phases[0].prepare()  # a Setup is ready to fit: its first phase's layers set, its model compiled
    device = hardware.device_name(cpu, gpus)
    how = {(True, True): " (head from cached features)", (True, False): " (features: cached but no "
           "cache given: the frozen phases train on the images)"}.get((recipe.features == "cached", cached), "")
    log.info("training %s in %s on %s with %s%s", family.name, precision, device,
             hardware.strategy_name(dist), how)
    return Setup(family, recipe, model, (x_train, y_train), val_data, seed, steps, dist, precision,
                 device, hardware.isa_flags(cpu), phases, head, resized)
