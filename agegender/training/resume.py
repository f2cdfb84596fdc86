"""Resuming an interrupted training run: what a run keeps in its backup folder and how it is read back.

A run's backup folder (``paths.train_backup``) is stamped with a :func:`fingerprint` of its recipe,
seed, precision, replicas and training data; a backup of another run is discarded, never resumed.
Per phase it holds Keras' BackupAndRestore checkpoint of the last finished epoch (with the layers'
random generator states, which Keras' weights files leave out) and, once the phase is done, its
final weights and best validation score, so a finished phase is not trained again. The training
seconds survive too (:class:`Clock`). The fit engine (:mod:`agegender.training.fit`) calls these.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from agegender.data.arrays import image_chunks
from agegender.training import keras_compat

log = logging.getLogger(__name__)
ELAPSED = "elapsed.json"  # in a backup folder: training seconds up to its last saved epoch


class Clock:
    """Training seconds of a run across a resume: the seconds recorded in the backup folder by an
    earlier, interrupted process (up to its last saved epoch) plus this process's."""

    def __init__(self, backup: Path):
        self.path = backup / ELAPSED
        self.before = float(json.loads(self.path.read_text())["seconds"]) if self.path.is_file() else 0.0
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.start

    def save(self) -> None:
        self.path.write_text(json.dumps({"seconds": self.seconds()}))


def seed_states(model: keras.Model) -> np.ndarray:
    """The states of the model's random generators, stacked (G, 2); Keras' weights files leave
    them out."""
    states = [np.asarray(g.state.numpy()) for g in keras_compat.seed_generators(model)]
    return np.stack(states) if states else np.zeros((0, 2))


def set_seed_states(model: keras.Model, states: np.ndarray) -> None:
    for generator, state in zip(keras_compat.seed_generators(model), states):
        generator.state.assign(state)


def save_seed_states(model: keras.Model, path: Path) -> None:
    np.save(path, seed_states(model))


def load_seed_states(model: keras.Model, path: Path) -> None:
    if path.is_file():  # without it a resumed run would draw other augmentations
        set_seed_states(model, np.load(path))


@dataclass(frozen=True)
class FinishedPhase:
    """What a finished phase leaves for the run: its best validation score (None without val), the
    FLOPs one trained face cost in it and the epochs it ran (None when they were not counted)."""
    best: float | None
    flops_per_face: float | None = None
    epochs: int | None = None


def save_finished_phase(model: keras.Model, folder: Path, finished: FinishedPhase) -> None:
    """Mark a phase finished: its final weights (the best epoch's, after early stopping), its
    :class:`FinishedPhase` record and the random generators' states, so a resume does not train it
    again."""
    np.savez(folder / "finished.npz", *model.get_weights())
    np.save(folder / "finished_seed_states.npy", seed_states(model))
    (folder / "finished.json").write_text(json.dumps(asdict(finished)))


def load_finished_phase(model: keras.Model, folder: Path) -> FinishedPhase | None:
    """The record of a phase finished before an interruption, with its weights and generator
    states restored; None when the phase did not finish."""
    if not (folder / "finished.json").is_file():
        return None
    with np.load(folder / "finished.npz") as weights:
        model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
    set_seed_states(model, np.load(folder / "finished_seed_states.npy"))
    return FinishedPhase(**json.loads((folder / "finished.json").read_text()))


class ResumeLive(keras.callbacks.Callback):
    """Puts DVCLive's step on the epoch a fit starts from, after BackupAndRestore may have moved
    it: DVCLive's own resume starts over when only the first epoch was logged."""

    def __init__(self, live):
        super().__init__()
        self.live = live

    def on_train_begin(self, logs=None):
        restored = keras_compat.restored_epoch(self.model)
        if restored:  # restored from a backup: go on from its epoch
            self.live.step = restored


def resume_epoch(phase_backup: Path, default: int) -> int:
    """The epoch a phase resumes from: what its backup recorded (Keras' training_metadata.json),
    else ``default``."""
    meta = phase_backup / "training_metadata.json"
    if meta.is_file() and (phase_backup / "latest.weights.h5").is_file():
        return int(json.loads(meta.read_text())["epoch"])
    return default


def fingerprint(setup) -> str:
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


def backup_folder(backup_dir: Path | None, setup) -> Path:
    """The backup folder of this run: ``backup_dir`` (per worker under multi-worker training),
    emptied first when it holds another run's backup; a temporary folder without ``backup_dir``."""
    if backup_dir is None:
        return Path(tempfile.mkdtemp(prefix="agegender_train_"))
    folder = Path(backup_dir)
    resolver = getattr(setup.strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type:
        folder = folder / f"{resolver.task_type}_{resolver.task_id}"
    stamp = folder / "run.json"
    stamped = fingerprint(setup)
    if folder.exists() and (not stamp.is_file() or json.loads(stamp.read_text()) != stamped):
        log.warning("%s holds the backup of another run (other settings or data): starting over", folder)
        shutil.rmtree(folder)
    if stamp.is_file():
        log.info("resuming from the backup in %s", folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(stamped))
    return folder


def backup_callback(fitted: keras.Model, folder: Path, clock: Clock) -> keras.callbacks.Callback:
    """Keras' BackupAndRestore of one phase into ``folder`` (its last finished epoch), saving and
    restoring the layers' random generator states beside the weights, and the clock with them."""
    return keras_compat.BackupAndRestore(
        str(folder), after_save=lambda f: (save_seed_states(fitted, f / "seed_states.npy"), clock.save()),
        after_load=lambda f: load_seed_states(fitted, f / "seed_states.npy"), delete_checkpoint=False)


def finish(backup: Path, backup_dir: Path | None, live_dir: Path) -> None:
    """A run finished: its DVCLive logs copied from the backup to ``live_dir`` (replacing what was
    there), then the backup removed (nothing to resume), and the per-worker folder's parent too
    when it is left empty."""
    if live_dir.exists():
        shutil.rmtree(live_dir)
    shutil.copytree(backup / "live", live_dir)
    shutil.rmtree(backup)
    if backup_dir and backup != backup_dir and not any(backup_dir.iterdir()):
        backup_dir.rmdir()
