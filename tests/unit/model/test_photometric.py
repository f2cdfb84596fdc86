"""Light-and-lens augmentations (params.Augment brightness / grayscale / noise): each does what it
says in training, nothing at inference, and is absent unless asked for (the default model keeps
its layers)."""
import numpy as np

from agegender.model.augmentation import augmentation
from agegender.params import Augment

OFF = {"flip": False, "translation": 0.0, "framing": {"probability": 0.0}}


def _faces(n=8, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(40, 215, (n, size, size, 3)).astype("float32")


def test_each_setting_adds_its_layer_and_the_default_adds_none():
    assert augmentation(Augment.model_validate(OFF), seed=1).name == "augment"  # Identity: off
    names = lambda cfg: [type(x).__name__ for x in augmentation({**OFF, **cfg}, seed=1).layers]
    assert names({"brightness": 0.3}) == ["RandomBrightness"]
    assert names({"grayscale": 0.2}) == ["RandomGrayscale"]
    assert names({"noise": 0.04}) == ["PixelNoise"]
    default = [type(x).__name__ for x in augmentation(Augment(), seed=1).layers]
    assert not {"RandomBrightness", "RandomGrayscale", "PixelNoise"} & set(default)


def test_grayscale_one_gives_equal_channels_and_inference_is_untouched():
    x = _faces()
    layer = augmentation({**OFF, "grayscale": 1.0}, seed=1)
    y = np.asarray(layer(x, training=True))
    assert y.shape == x.shape and np.allclose(y[..., 0], y[..., 1]) and np.allclose(y[..., 1], y[..., 2])
    assert np.array_equal(np.asarray(layer(x, training=False)), x)


def test_brightness_shifts_faces_within_its_range_and_noise_has_its_sigma():
    x = _faces(n=64)  # pixels 40-215: the clip to 0-255 rarely bites at sigma 10
    y = np.asarray(augmentation({**OFF, "brightness": 0.3}, seed=1)(x, training=True))
    shift = (y - x).mean(axis=(1, 2, 3))
    assert np.abs(shift).max() <= 0.3 * 255 + 1e-3 and shift.std() > 5  # faces shifted unlike
    z = np.asarray(augmentation({**OFF, "noise": 0.04}, seed=1)(x, training=True))
    assert abs((z - x).std() - 0.04 * 255) < 0.5  # sigma 10.2 on the 0-255 scale
    assert np.array_equal(np.asarray(augmentation({**OFF, "noise": 0.04}, seed=1)(x, training=False)), x)


def test_a_model_with_them_saves_and_loads_and_draws_the_same_noise_for_the_same_seed(tmp_path):
    import keras

    cfg = {**OFF, "brightness": 0.2, "grayscale": 0.5, "noise": 0.04}
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, augmentation(cfg, seed=3)(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    x = _faces()
    assert np.array_equal(np.asarray(loaded(x, training=False)), x)
    a = np.asarray(augmentation(cfg, seed=3)(x, training=True))
    b = np.asarray(augmentation(cfg, seed=3)(x, training=True))
    assert np.array_equal(a, b) and not np.array_equal(a, x)
