"""The fused batch norm computes what Keras' BatchNormalization computes, in training and after."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from agegender.model.batch_norm import FusedBatchNormalization
from agegender.model.build import build_model
from agegender.params import Recipe


def _pair(policy, shape):
    keras_bn = keras.layers.BatchNormalization(dtype=policy, momentum=0.9)
    fused = FusedBatchNormalization(dtype=policy, momentum=0.9)
    for layer in (keras_bn, fused):
        layer.build(shape)
        channels = shape[-1]
        layer.gamma.assign(np.linspace(0.5, 2.0, channels))
        layer.beta.assign(np.linspace(-1.0, 1.0, channels))
    return keras_bn, fused


def _step(layer, x):
    """Output, gradients (input, gamma, beta) of a weighted sum, moving mean and variance."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        # random weights per element: every gradient far from the zero that cancellation rounds
        weights = np.random.default_rng(3).normal(size=y.shape).astype(np.float32)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return [np.asarray(tf.cast(t, tf.float32)) for t in
            (y, *grads, layer.moving_mean, layer.moving_variance)]


@pytest.mark.parametrize("policy, atol", [("float32", 1e-4), pytest.param("mixed_bfloat16", 3e-2, marks=pytest.mark.bf16)])
def test_a_training_step_matches_keras_batch_norm(policy, atol):
    shape = (8, 6, 6, 5)
    # not zero-mean, not unit-variance: the statistics and the moving averages have work to do
    x = tf.cast(np.random.default_rng(0).normal(2.0, 3.0, shape), keras.DTypePolicy(policy).compute_dtype)
    keras_bn, fused = _pair(policy, shape)
    for _ in range(2):  # the moving averages after two updates too
        want, got = _step(keras_bn, x), _step(fused, x)
        for name, a, b in zip(("output", "d input", "d gamma", "d beta", "moving mean",
                               "moving variance"), want, got):
            np.testing.assert_allclose(b, a, rtol=atol, atol=atol, err_msg=name)
    assert not np.allclose(fused.moving_mean, 0.0)  # they moved
    np.testing.assert_allclose(fused(x, training=False), keras_bn(x, training=False), atol=atol)


def test_what_the_fused_kernel_does_not_take_is_keras_own_code():
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 4)), tf.float32)  # 2-D: a dense layer's
    keras_bn, fused = _pair("float32", x.shape)
    np.testing.assert_allclose(_step(fused, x)[0], _step(keras_bn, x)[0], atol=1e-6)
    assert not fused._fused(x, True, None)
    assert fused._fused(tf.zeros((2, 3, 3, 4)), True, None)
    assert not fused._fused(tf.zeros((2, 3, 3, 4)), False, None)  # inference: moving statistics


def test_the_default_network_uses_it_and_saves_and_loads_with_it(tmp_path):
    model = build_model("compact", Recipe(), seed=0, precision="float32")
    norms = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert norms and all(isinstance(la, FusedBatchNormalization) for la in norms)
    x = np.random.default_rng(2).integers(0, 256, (4, 72, 72, 3)).astype(np.uint8)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.get_layer("stem_bn"), FusedBatchNormalization)
    np.testing.assert_allclose(loaded(x, training=False)["age"], model(x, training=False)["age"], atol=1e-6)
