"""Training a model family from its recipe: the one mapping from settings to network, optimizer,
losses and input pipeline, used alike by the train stage, k-fold and the benchmarks.

Per-epoch metrics go to DVCLive, so ``dvc plots show`` draws learning curves. The weights of the
best validation epoch are restored before returning; with ``final_fit`` the model trains on
train+val for its fixed cosine schedule instead and keeps the last epoch's weights (choose the
schedule on val first, then refit). A recipe with ``fine_tune`` trains in two phases (frozen
base, then its last blocks unfrozen) through the same loop.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from agegender.data.arrays import concat_images, image_chunks
from agegender.data.images import get_profile
from agegender.live import read_live_metric
from agegender.model import hardware, networks
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


def build_model(family: str | Family, recipe: Recipe, seed: int, precision: str | None = None) -> keras.Model:
    """The family's network (uncompiled), with the recipe's architecture, augmentation and precision.

    ``precision`` (default: the recipe's, with ``auto`` resolved for this machine by
    :func:`agegender.model.hardware.choose_precision`): under ``mixed_bfloat16`` /
    ``mixed_float16`` layers compute in 16 bits with float32 weights, except the float32 heads;
    the layers keep their policy when the model is saved. Raises :class:`ParamsError` for an
    architecture key the family's builder does not take.
    """
    precision = precision or resolve_precision(recipe.precision)
    family = get_family(family) if isinstance(family, str) else family
    build = getattr(networks, family.builder)
    architecture = recipe.network_settings(family)  # typed by the family's schema (families.py)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)  # layers take the policy when created
    try:
        return build(get_profile(family.profile).shape, family.age_output,
                     recipe.augment.model_dump(), seed, **architecture)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def resolve_precision(requested: str) -> str:
    """``requested``, or for ``auto`` the precision this machine's hardware suits."""
    if requested != "auto":
        return requested
    return hardware.choose_precision("auto", hardware.cpu_info(), hardware.gpu_info())


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


def training_dataset(family: Family, recipe: Recipe, images, labels: np.ndarray,
                     seed: int, epochs: range) -> tf.data.Dataset:
    """Shuffled training batches of (images, targets[, weights]) for uint8 images (N, S, S, C) and
    label rows (N, 3) [age, gender, race]: the recipe's batch size, class balance and mixup, for
    the epochs in ``epochs`` one after another (each epoch's order depends on the seed and the
    epoch number only, so a resumed run sees what an uninterrupted one would)."""
    weights = None
    if recipe.class_balance:
        weights = {"age": balanced_sample_weights(labels[:, 0], family.age_output),
                   "gender": np.ones(len(labels), dtype=np.float32)}
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
    """Everything a fit needs, built from one recipe: the compiled model and its datasets, and
    what it runs on (precision actually used, device, ``tf.distribute`` strategy)."""
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

    @property
    def train_images(self) -> int:
        return len(self.train_split[0])

    def train_data(self, first_epoch: int, end_epoch: int) -> tf.data.Dataset:
        """The training batches of epochs ``first_epoch`` .. ``end_epoch - 1``, one after another."""
        return training_dataset(self.family, self.recipe, *self.train_split, self.seed,
                                range(first_epoch, end_epoch))


def setup_training(family_name: str, recipe: Recipe, seed: int, train: tuple[np.ndarray, np.ndarray],
                   val: tuple[np.ndarray, np.ndarray] | None = None, strategy: str = "auto") -> Setup:
    """Strategy, precision, seeds, subsample, build, compile and datasets: the one place a recipe
    becomes a model, an optimizer and input pipelines (train stage, k-fold and benchmarks all come
    through here).

    ``train`` and ``val`` are (uint8 images (N, S, S, C), labels (N, 3) [age, gender, race]);
    the images an array or ``ImageFiles`` (read from disk a batch at a time, never copied whole).
    With ``final_fit`` val joins the training data and no validation data is returned.
    ``strategy`` names a :func:`agegender.model.hardware.make_strategy` choice; the recipe's
    ``batch_size`` is the global batch, split across its replicas.
    """
    family = get_family(family_name)
    dist = hardware.make_strategy(strategy)  # first: multi-worker set-up must precede other ops
    cpu, gpus = hardware.cpu_info(), hardware.gpu_info()
    precision = hardware.choose_precision(recipe.precision, cpu, gpus)
    seed_everything(seed)
    x_train, y_train = subsample(*train, recipe.max_train_images, seed)
    if val is not None:
        val = subsample(*val, recipe.max_val_images, seed + 1)
    if recipe.final_fit and val is not None:
        x_train, y_train = concat_images([x_train, val[0]]), np.concatenate([y_train, val[1]])
        val = None
    val_data = None if val is None else make_dataset(val[0], targets(val[1], family.age_output),
                                                     recipe.batch_size)
    steps = batches_per_epoch(len(x_train), recipe.batch_size)
    with dist.scope():  # variables (weights, optimizer state) are created per replica
        model = build_model(family, recipe, seed, precision)
        _, first_end, first_recipe = training_phases(recipe)[0]
        compile_model(model, family, first_recipe.model_copy(update={"epochs": first_end}), steps)
    device = hardware.device_name(cpu, gpus)
    log.info("training %s in %s on %s with %s", family.name, precision, device,
             hardware.strategy_name(dist))
    return Setup(family, recipe, model, (x_train, y_train), val_data, seed, steps, dist, precision,
                 device, hardware.isa_flags(cpu))


def _generators(model: keras.Model) -> list:
    """Every random generator of the model's layers (augmentation, dropout)."""
    return [g for layer in model._flatten_layers() for g in layer._seed_generators]


def _seed_states(model: keras.Model) -> np.ndarray:
    """The states of the model's random generators, stacked (G, 2); Keras' weights files leave
    them out."""
    states = [np.asarray(g.state.numpy()) for g in _generators(model)]
    return np.stack(states) if states else np.zeros((0, 2))


def _set_seed_states(model: keras.Model, states: np.ndarray) -> None:
    for generator, state in zip(_generators(model), states):
        generator.state.assign(state)


class _Backup(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, plus the layers' random generator states: without them a resumed
    run would draw other augmentations than an uninterrupted one."""

    def _save_model(self):
        super()._save_model()
        np.save(Path(self.backup_dir) / "seed_states.npy", _seed_states(self.model))

    def _load_model(self):
        super()._load_model()
        path = Path(self.backup_dir) / "seed_states.npy"
        if path.is_file() and Path(self._training_metadata_path).is_file():
            _set_seed_states(self.model, np.load(path))


def _save_finished_phase(model: keras.Model, folder: Path, best: float | None) -> None:
    """Mark a phase finished: its final weights (the best epoch's, after early stopping), its best
    validation score and the random generators' states, so a resume does not train it again."""
    np.savez(folder / "finished.npz", *model.get_weights())
    np.save(folder / "finished_seed_states.npy", _seed_states(model))
    (folder / "finished.json").write_text(json.dumps({"best": best}))


def _load_finished_phase(model: keras.Model, folder: Path) -> float | None | bool:
    """The best validation score of a phase finished before an interruption, with its weights
    and generator states restored; ``False`` when the phase did not finish."""
    if not (folder / "finished.json").is_file():
        return False
    with np.load(folder / "finished.npz") as weights:
        model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
    _set_seed_states(model, np.load(folder / "finished_seed_states.npy"))
    return json.loads((folder / "finished.json").read_text())["best"]


class _ResumeLive(keras.callbacks.Callback):
    """Puts DVCLive's step on the epoch a fit starts from, after BackupAndRestore may have moved
    it: DVCLive's own resume starts over when only the first epoch was logged."""

    def __init__(self, live):
        super().__init__()
        self.live = live

    def on_train_begin(self, logs=None):
        if self.model._initial_epoch:  # restored from a backup: go on from its epoch
            self.live.step = self.model._initial_epoch


@contextlib.contextmanager
def _fit_context(model: keras.Model, strategy):
    """Where ``fit`` runs. Under MultiWorkerMirroredStrategy Keras 3.15's fit fails twice: it
    reduces a sample batch across workers to build its metrics (and cannot, for a nested batch),
    and it averages scalar logs over an axis they do not have. So the model forgets its strategy
    and fit runs inside the strategy's scope instead, where Keras picks it up again for training
    (building the metrics when it traces the train step), and the steps return their logs with
    that axis."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    def one_dimensional(step):  # scalar logs as shape (1,): averaged over workers along axis 0
        return lambda data: {k: tf.reshape(v, [1]) for k, v in step(data).items()}

    saved = model._distribute_strategy
    model._distribute_strategy = None
    model.train_step, model.test_step = one_dimensional(model.train_step), one_dimensional(model.test_step)
    try:
        with strategy.scope():
            yield
    finally:  # back to the class's own steps and the model's strategy (is_chief reads it)
        del model.train_step, model.test_step
        model._distribute_strategy = saved


def _resume_epoch(phase_backup: Path, default: int) -> int:
    """The epoch a phase resumes from: what its backup recorded (Keras' training_metadata.json),
    else ``default``."""
    meta = phase_backup / "training_metadata.json"
    if meta.is_file() and (phase_backup / "latest.weights.h5").is_file():
        return int(json.loads(meta.read_text())["epoch"])
    return default


def _fingerprint(setup: Setup) -> str:
    """What a backup belongs to: the recipe, seed, precision, replicas and the training data's
    content (images and labels). A backup of another run is discarded, never resumed."""
    digest = hashlib.sha256(json.dumps(
        [setup.family.name, setup.recipe.model_dump(), setup.seed, setup.precision,
         setup.strategy.num_replicas_in_sync], sort_keys=True).encode())
    images, labels = setup.train_split
    for chunk in image_chunks(images):  # the same digest as of the whole array, read in parts
        digest.update(chunk.data)
    digest.update(np.ascontiguousarray(labels).data)
    return digest.hexdigest()


def _backup_folder(backup_dir: Path | None, setup: Setup) -> Path:
    """The backup folder of this run: ``backup_dir`` (per worker under multi-worker training),
    emptied first when it holds another run's backup; a temporary folder without ``backup_dir``."""
    if backup_dir is None:
        return Path(tempfile.mkdtemp(prefix="agegender_train_"))
    folder = Path(backup_dir)
    resolver = getattr(setup.strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type:
        folder = folder / f"{resolver.task_type}_{resolver.task_id}"
    stamp = folder / "run.json"
    fingerprint = _fingerprint(setup)
    if folder.exists() and (not stamp.is_file() or json.loads(stamp.read_text()) != fingerprint):
        log.warning("%s holds the backup of another run (other settings or data): starting over", folder)
        shutil.rmtree(folder)
    if stamp.is_file():
        log.info("resuming from the backup in %s", folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(fingerprint))
    return folder


def _live_callback(live):
    """DVCLive's Keras callback, but the Live run outlives one ``fit`` call (one per phase): the
    ``with Live(...)`` block in :func:`train_model` ends it after the last phase."""
    from dvclive.keras import DVCLiveCallback

    class PhaseLiveCallback(DVCLiveCallback):
        def on_train_end(self, logs=None):
            pass

    return PhaseLiveCallback(live=live)


def train_model(family_name: str, recipe: Recipe, seed: int, train: tuple[np.ndarray, np.ndarray],
                val: tuple[np.ndarray, np.ndarray], live_dir: str | Path, verbose: int = 2,
                strategy: str = "auto", backup_dir: str | Path | None = None) -> tuple[keras.Model, dict]:
    """Train a family on (images, labels) splits; returns the model and a summary (epochs run,
    seconds, images/s, parameters, best validation age MAE or None after a final fit, and the
    precision, device and strategy used).

    With ``backup_dir`` a run killed mid-way resumes from its last finished epoch when called
    again with the same settings and data (Keras' BackupAndRestore, per phase; a finished phase
    is not trained again), and without validation (``final_fit``) ends with the same model as an
    uninterrupted run; the folder is removed when the run finishes. The DVCLive logs are kept
    there too while training, so the learning curves of a resumed run are whole. Within a phase
    interrupted mid-way, early stopping starts its patience and best-epoch memory afresh, so a
    validated run may then pick another epoch.
    """
    from dvclive import Live

    if len(train[0]) == 0 or len(val[0]) == 0:
        raise ParamsError(f"train ({len(train[0])}) and val ({len(val[0])}) splits must both hold "
                          "images: add data or change the split fractions in params.yaml")
    setup = setup_training(family_name, recipe, seed, train, val, strategy)
    model = setup.model
    backup = _backup_folder(Path(backup_dir) if backup_dir else None, setup)
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
    epochs_seen: list[int] = []
    callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: epochs_seen.append(e)))
    best_value, best_weights = float("inf"), None
    with Live(str(backup / "live"), dvcyaml=None, save_dvc_exp=False, resume=True) as live:
        callbacks.append(_live_callback(live))
        start = time.perf_counter()
        initial_epoch, resumed = 0, False
        for i, (phase, end_epoch, phase_recipe) in enumerate(training_phases(recipe)):
            set_trainable(model, recipe.fine_tune, phase)
            if i > 0:  # the first phase was compiled by setup_training; a cosine schedule spans its phase
                with setup.strategy.scope():
                    compile_model(model, setup.family,
                                  phase_recipe.model_copy(update={"epochs": end_epoch - initial_epoch}),
                                  setup.steps_per_epoch)
            folder = backup / phase
            folder.mkdir(parents=True, exist_ok=True)
            phase_best = _load_finished_phase(model, folder)
            if phase_best is not False:  # finished before an interruption: not trained again
                log.info("phase %s: finished before, restored from %s", phase, folder)
                resumed = True
            else:
                first = _resume_epoch(folder, initial_epoch)  # the data starts where fit will
                resumed = resumed or first > initial_epoch
                model._initial_epoch = None  # Keras keeps a restored start epoch across fit calls
                log.info("phase %s: epochs %d-%d of %d training images", phase, first + 1,
                         end_epoch, setup.train_images)
                with _fit_context(model, setup.strategy):
                    model.fit(setup.train_data(first, end_epoch), steps_per_epoch=setup.steps_per_epoch,
                              validation_data=setup.val_data, initial_epoch=initial_epoch,
                              epochs=end_epoch, verbose=verbose,
                              callbacks=[_Backup(str(folder), delete_checkpoint=False),
                                         _ResumeLive(live), *callbacks])
                phase_best = early_stopping.best if setup.val_data is not None else None
                _save_finished_phase(model, folder, phase_best)
            # EarlyStopping restores the best epoch of this phase; keep the best over all phases
            if phase_best is not None and phase_best < best_value:
                best_value, best_weights = phase_best, model.get_weights()
            initial_epoch = end_epoch
        seconds = time.perf_counter() - start
    if best_weights is not None:
        model.set_weights(best_weights)
    live_dir = Path(live_dir)
    if live_dir.exists():
        shutil.rmtree(live_dir)
    shutil.copytree(backup / "live", live_dir)
    shutil.rmtree(backup)  # finished: nothing to resume
    if backup_dir and backup != Path(backup_dir) and not any(Path(backup_dir).iterdir()):
        Path(backup_dir).rmdir()  # the per-worker folder's parent, now empty
    val_mae = read_live_metric(live_dir, "age_mae").get("val")
    epochs_run = len(read_live_metric(live_dir, "loss")["train"])  # every epoch, across a resume
    summary = {"model": family_name, "epochs_run": epochs_run,
               "best_val_age_mae": (None if setup.val_data is None or val_mae is None
                                    else round(float(val_mae["age_mae"].min()), 4)),
               "final_fit": recipe.final_fit, "train_seconds": round(seconds, 1),
               "train_images": setup.train_images,
               "train_images_per_second": round(setup.train_images * len(epochs_seen) / seconds, 1),
               "parameters": int(model.count_params()),
               "precision": setup.precision, "precision_setting": recipe.precision,
               "device": setup.device, "isa": " ".join(setup.isa),
               "strategy": hardware.strategy_name(setup.strategy),
               "resumed": resumed}
    return model, summary
