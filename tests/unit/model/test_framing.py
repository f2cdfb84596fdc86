"""Re-framing augmentation: faces scaled looser or tighter in training, never at inference."""
import numpy as np
import pytest

from agegender.model.build import build_model
from agegender.model.augmentation import RandomFraming
from agegender.params import Augment, Framing, Recipe
from agegender.serving.saved import ModelInfo, load_model, save_model


def _framed_images(n=64, size=40):
    """Grey faces (100) in a white frame (200) three pixels wide."""
    x = np.full((n, size, size, 3), 100, np.float32)
    x[:, :3], x[:, -3:], x[:, :, :3], x[:, :, -3:] = 200, 200, 200, 200
    return x


def _run(layer, x, training):
    import keras

    return keras.ops.convert_to_numpy(layer(x, training=training))


def test_shrinking_puts_faces_on_edge_or_black_borders_and_inference_is_untouched():
    x = _framed_images()
    layer = RandomFraming(1.0, 0.7, 0.7, seed=3)
    assert np.array_equal(_run(layer, x, training=False), x)
    y = _run(layer, x, training=True)
    corners = y[:, 0, 0, 0]
    assert set(np.round(corners)) == {0.0, 200.0}  # black border or the frame's edge repeated
    assert 16 < (corners == 0).sum() < 48  # about half each
    centre = y[:, 14:26, 14:26]
    assert np.allclose(centre, 100)  # the middle of the face stays where it was
    side = (y[:, 20, :, 0] > 150).sum(axis=1)  # the frame's columns, now nearer the centre
    edge = corners == 200
    assert (y[~edge, 20, :5, 0] == 0).all() and (y[edge, 20, :5, 0] == 200).all()
    assert (side[~edge] > 0).all()


def test_probability_leaves_the_rest_as_they_are_and_a_seed_repeats():
    x = _framed_images()
    y = _run(RandomFraming(0.5, 0.65, 1.2, seed=7), x, training=True)
    same = np.all(y == x, axis=(1, 2, 3))
    assert 16 < same.sum() < 48
    assert np.array_equal(y, _run(RandomFraming(0.5, 0.65, 1.2, seed=7), x, training=True))
    assert not np.array_equal(y, _run(RandomFraming(0.5, 0.65, 1.2, seed=8), x, training=True))


def test_cropping_tighter_enlarges_the_face():
    x = _framed_images()
    y = _run(RandomFraming(1.0, 1.25, 1.25, seed=0), x, training=True)
    assert (y[:, 0, 0] < 150).all()  # the frame is cut away


def test_a_model_with_framing_saves_and_loads_in_safe_mode(tmp_path):
    recipe = Recipe(augment=Augment(translation=0.06, framing=Framing(probability=0.5)))
    model = build_model("compact", recipe, seed=0)
    layers = [layer for layer in model.get_layer("augment").layers if isinstance(layer, RandomFraming)]
    assert len(layers) == 1 and layers[0].probability == 0.5
    save_model(model, tmp_path / "m.keras", ModelInfo.for_family("compact", "float32"))
    loaded, _ = load_model(tmp_path / "m.keras")
    x = np.random.default_rng(0).integers(0, 255, (2, 72, 72, 3)).astype(np.uint8)
    assert np.allclose(loaded.predict(x, verbose=0)["age"], model.predict(x, verbose=0)["age"], atol=1e-5)


def test_framing_off_adds_no_layer():
    model = build_model("compact", Recipe(augment=Augment(translation=0.06)), seed=0)
    augment = model.get_layer("augment")
    assert not any(isinstance(layer, RandomFraming) for layer in getattr(augment, "layers", []))


@pytest.mark.parametrize("bad", [dict(probability=1.0, min_scale=0.0, max_scale=1.0),
                                 dict(probability=2.0, min_scale=0.7, max_scale=1.0)])
def test_bad_layer_settings_are_refused(bad):
    with pytest.raises(ValueError, match="RandomFraming"):
        RandomFraming(**bad)


@pytest.mark.parametrize("probability, dtype", [(0.5, "float32"), (1.0, "float32"), pytest.param(0.5, "bfloat16", marks=pytest.mark.bf16),
                                                (1e-9, "float32")])
def test_warping_once_gives_the_two_warp_output_bit_for_bit(probability, dtype):
    # random pixels, so any difference in sampling or fill shows; 1e-9: no face re-framed at all
    x = np.random.default_rng(1).integers(0, 256, (48, 24, 24, 3)).astype(np.float32)
    twice = RandomFraming(probability, 0.65, 1.2, seed=5, dtype=dtype)
    once = RandomFraming(probability, 0.65, 1.2, seed=5, warp_once=True, dtype=dtype)
    for _ in range(2):  # the seed generator advances alike: the second batch matches too
        a, b = _run(twice, x, training=True), _run(once, x, training=True)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(_run(once, x, training=False), x)


def test_warp_once_is_a_framing_setting_the_network_and_its_saved_config_keep(tmp_path):
    recipe = Recipe(augment=Augment(framing=Framing(probability=0.5, warp_once=True)))
    model = build_model("compact", recipe, seed=0)
    layer = next(la for la in model.get_layer("augment").layers if isinstance(la, RandomFraming))
    assert layer.warp_once and RandomFraming.from_config(layer.get_config()).warp_once
    assert not Framing().warp_once  # the default warps twice, as before
