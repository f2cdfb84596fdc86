"""Progressive resizing (``Recipe.progressive``): the first epochs train on faces resized down,
where a step costs about (size / full size)^2 of the FLOPs, the last ones at the profile's size.

The networks are convolutional up to their global pooling, so the same weights run at any size.
Training fits :func:`resizable` (a wrapper: one :class:`ScheduledResize` layer, then the model, the
layers shared); :class:`SizeSchedule` sets the side at each epoch's start from the epoch number
alone, so a resumed run trains each epoch at the size an uninterrupted one would. The model saved
is the wrapped one: its input, profile, predictor and TFLite export are unchanged.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from agegender.params import Recipe


def epoch_sizes(recipe: Recipe, full: int) -> list[int]:
    """The side each epoch trains at (0-based epochs of ``recipe.epochs``): the progressive steps in
    order, then ``full``."""
    sizes = [step.size for step in recipe.progressive for _ in range(step.epochs)]
    return (sizes + [full] * recipe.epochs)[:recipe.epochs]


class ScheduledResize(keras.layers.Layer):
    """Square images resized (area averaging, as a smaller photo would be) to ``side`` px, a
    variable set between epochs; passed through at their own size (or ``side`` 0). Its output's
    height and width are unknown to the graph, which is traced once for every size."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.side = self.add_weight(shape=(), dtype="int32", initializer="zeros", trainable=False,
                                    name="side")

    def call(self, images):
        side = tf.identity(self.side.value)
        resize = tf.logical_and(side > 0, side != tf.shape(images)[1])
        return tf.cond(resize, lambda: tf.image.resize(images, tf.stack([side, side]), method="area"),
                       lambda: tf.cast(images, tf.float32))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None, input_shape[3])


def resizable(model: keras.Model) -> keras.Model:
    """``model`` behind a :class:`ScheduledResize` layer (named ``resize``): a model of the same
    input and outputs that shares every weight of ``model``."""
    inputs = keras.Input(model.input_shape[1:], name=model.inputs[0].name.split(":")[0])
    return keras.Model(inputs, model(ScheduledResize(name="resize")(inputs)), name=f"{model.name}_resized")


def at_size(model: keras.Model, side: int) -> keras.Model:
    """``model`` run on its input resized to a fixed ``side`` px: the graph :mod:`flops` counts for a
    progressive epoch (the training graph's size is unknown until it runs). Build it, and trace it,
    within :func:`agegender.training.keras_compat.any_input_size` of ``model``."""
    inputs = keras.Input(model.input_shape[1:])
    x = inputs if side == model.input_shape[1] else keras.layers.Resizing(side, side, "area")(inputs)
    return keras.Model(inputs, model(x))


class SizeSchedule(keras.callbacks.Callback):
    """Sets the wrapper's side at the start of each epoch from ``sizes`` (:func:`epoch_sizes`).
    Validation runs at the full size, the size the model is saved and predicts at, so early
    stopping and a plateau schedule compare every epoch on one scale."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        self.sizes = sizes
        self.side = 0

    def _set(self, side: int) -> None:
        self.model.get_layer("resize").side.assign(side)

    def on_epoch_begin(self, epoch, logs=None):
        self.side = self.sizes[min(epoch, len(self.sizes) - 1)]
        self._set(self.side)

    def on_test_begin(self, logs=None):
        self._set(0)  # 0: the images pass at their own size

    def on_test_end(self, logs=None):
        self._set(self.side)
