"""The Keras adapter (agegender.training.keras_compat) holds for the installed Keras."""
import importlib.metadata
import re

import keras
import numpy as np

from agegender.training import keras_compat
from locations import ROOT


def test_installed_keras_is_in_the_range_the_adapter_was_tested_on():
    """Fails (never skips) on an untested Keras: read agegender/training/keras_compat.py against the
    new release, run the slow resume / multi-worker tests, then widen TESTED_KERAS and pyproject."""
    low, high = keras_compat.TESTED_KERAS
    assert keras_compat.is_tested(keras.__version__), (
        f"Keras {keras.__version__} is outside the tested range [{low}, {high}) of "
        "agegender/training/keras_compat.py")
    assert keras_compat.is_tested(importlib.metadata.version("keras"))


def test_pyproject_promises_the_tested_range_and_requirements_pin_inside_it():
    spec = re.search(r'"keras>=([\d.]+),<([\d.]+)"', (ROOT / "pyproject.toml").read_text())
    assert spec, "pyproject.toml: keras needs a >=low,<high range"
    bounds = tuple(keras_compat.version_tuple(v) for v in spec.groups())
    assert bounds == keras_compat.TESTED_KERAS
    pin = re.search(r"^keras==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pin and keras_compat.is_tested(pin.group(1))


def test_version_comparison():
    assert keras_compat.version_tuple("3.15.1") == (3, 15, 1)
    assert keras_compat.version_tuple("3.16.0rc1") == (3, 16, 0)
    assert keras_compat.version_tuple("3.15") == (3, 15, 0)
    assert keras_compat.is_tested("3.15.1") and keras_compat.is_tested("3.15.4")
    assert not keras_compat.is_tested("3.15.0") and not keras_compat.is_tested("3.16.0")
    assert not keras_compat.is_tested("4.0.0") and not keras_compat.is_tested("3.3.0")


def test_seed_generators_reach_nested_layers_and_restore_their_state():
    inner = keras.Sequential([keras.layers.RandomFlip("horizontal", seed=1)], name="augment")
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dropout(0.5, seed=2)(inner(inputs))
    model = keras.Model(inputs, outputs)
    generators = keras_compat.seed_generators(model)
    assert len(generators) == 2  # the nested flip's and the dropout's
    before = [g.state.numpy().copy() for g in generators]
    model(np.ones((2, 4, 4, 1), "float32"), training=True)  # draws advance the states
    assert any(not np.array_equal(b, g.state.numpy()) for b, g in zip(before, generators))


def test_restored_epoch_is_read_and_forgotten():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    assert keras_compat.restored_epoch(model) is None
    model._initial_epoch = 2  # what BackupAndRestore sets on a restore
    assert keras_compat.restored_epoch(model) == 2
    keras_compat.forget_restored_epoch(model)
    assert keras_compat.restored_epoch(model) is None
