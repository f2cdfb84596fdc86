"""Every use of Keras' private API in the project, in one room.

The training room (the fit engine, its resume and progressive resizing) needs a few things Keras 3
has no public API for; each is one small function or class here, with a comment saying what is missing.
A Keras upgrade means reading this module (and running ``tests/unit/training/test_keras_compat.py``, which fails
when the installed Keras is outside :data:`TESTED_KERAS`), not the whole training code.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Callable

import keras
from keras.src.models.functional import Functional

# The Keras releases this adapter was run against (the test suite, resume and multi-worker tests
# included): 3.15.1. pyproject.toml's range says the same; widen both after testing another one.
TESTED_KERAS = ((3, 15, 1), (3, 16, 0))  # [low, high)


def version_tuple(version: str) -> tuple[int, ...]:
    """"3.15.1" -> (3, 15, 1); a suffix such as "rc0" or ".dev" after the numbers is dropped."""
    parts = []
    for piece in version.split(".")[:3]:
        digits = re.match(r"\d*", piece).group()
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) < len(piece):  # "0rc1": the numbers end here
            break
    return tuple(parts + [0] * (3 - len(parts)))


def is_tested(version: str = keras.__version__) -> bool:
    """Whether ``version`` lies in :data:`TESTED_KERAS`."""
    low, high = TESTED_KERAS
    return low <= version_tuple(version) < high


def seed_generators(model: keras.Model) -> list:
    """Every ``keras.random.SeedGenerator`` of the model's layers (augmentation, dropout), nested
    models included. Missing public API: Keras saves no generator state in its weights or backups
    and lists a layer's generators only in the private ``_seed_generators``; ``_flatten_layers``
    walks nested layers the way Keras itself does (``model.layers`` is not recursive)."""
    return [g for layer in model._flatten_layers() for g in layer._seed_generators]


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore with two hooks: ``after_save(folder)`` runs each time it writes its
    backup and ``after_load(folder)`` each time it restored one (not on a fresh start).

    Missing public API: the callback offers no hook for saving state of one's own beside its
    weights, so the hooks ride on its private ``_save_model`` / ``_load_model`` and
    ``_training_metadata_path`` (what tells a restore from a fresh start)."""

    def __init__(self, backup_dir: str, after_save: Callable[[Path], None],
                 after_load: Callable[[Path], None], **kwargs):
        super().__init__(backup_dir, **kwargs)
        self._after_save, self._after_load = after_save, after_load

    def _save_model(self):
        super()._save_model()
        self._after_save(Path(self.backup_dir))

    def _load_model(self):
        super()._load_model()
        if Path(self._training_metadata_path).is_file():
            self._after_load(Path(self.backup_dir))


def restored_epoch(model: keras.Model) -> int | None:
    """The epoch BackupAndRestore made ``fit`` start from, or None. Missing public API: the
    callback hands its start epoch to ``fit`` through the model's private ``_initial_epoch``."""
    return model._initial_epoch


def forget_restored_epoch(model: keras.Model) -> None:
    """Clear a restored start epoch before the next ``fit``. Missing public API: Keras keeps
    ``_initial_epoch`` across ``fit`` calls, so a later phase would start at the earlier restore."""
    model._initial_epoch = None


@contextlib.contextmanager
def multi_worker_fit(model: keras.Model, strategy):
    """Where ``fit`` runs under ``MultiWorkerMirroredStrategy`` (a no-op for other strategies).

    Keras 3.15's fit fails there twice: it reduces a sample batch across workers to build its
    metrics (and cannot, for a nested batch), and it averages scalar logs over an axis they do not
    have. So the model forgets its strategy (private ``_distribute_strategy``: there is no public
    way to detach a model from the strategy it was built under) and fit runs inside the strategy's
    scope instead, where Keras picks it up again for training; and the instance's ``train_step`` /
    ``test_step`` are wrapped so the logs come back with that axis (overriding the steps is public
    API for subclasses, but not for a functional model's instance)."""
    import tensorflow as tf

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


@contextlib.contextmanager
def any_input_size(model: keras.Model):
    """Within it, the functional ``model`` may be called on images of another height and width
    (a convolutional network up to its global pooling runs at any size): Keras checks a call's
    shape against the ``Input`` of the model and of each model nested in it (a Sequential through
    its inner functional model) and has no public switch for it."""
    nested = [m for m in model._flatten_layers(include_self=True, recursive=True) if isinstance(m, keras.Model)]
    nested += [m._functional for m in nested if getattr(m, "_functional", None) is not None]
    # a functional model derives its spec from its Input unless one was set (_manual_input_spec)
    derived = [m for m in nested if isinstance(m, Functional) and "_manual_input_spec" not in vars(m)]
    before = {id(m): m.input_spec for m in nested if m not in derived}
    for m in nested:
        m.input_spec = None  # no check
    try:
        yield model
    finally:
        for m in nested:
            if m in derived:
                del m._manual_input_spec
            else:
                m.input_spec = before[id(m)]
