"""Keras functional networks of the model families. Every network takes uint8-range pixels
(batch, size, size, channels) and returns ``{"age": ..., "gender": ...}``; the gender output is one
sigmoid unit (probability of female) and the age output's form is given by an
:class:`~stages.targets.AgeOutput`.
"""
from __future__ import annotations

import keras
from keras import layers

from stages.targets import AgeOutput


def augmentation(cfg: dict, seed: int) -> keras.Sequential:
    """Random flip / rotation / zoom / translation; Keras runs these layers in training only."""
    steps = []
    if cfg.get("flip", True):
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if cfg.get("rotation", 0):
        steps.append(layers.RandomRotation(cfg["rotation"], fill_mode="nearest", seed=seed + 1))
    if cfg.get("zoom", 0):
        steps.append(layers.RandomZoom(cfg["zoom"], fill_mode="nearest", seed=seed + 2))
    if cfg.get("translation", 0):
        t = cfg["translation"]
        steps.append(layers.RandomTranslation(t, t, fill_mode="nearest", seed=seed + 3))
    if cfg.get("contrast", 0):
        steps.append(layers.RandomContrast(cfg["contrast"], seed=seed + 4))
    return keras.Sequential(steps, name="augment")


def age_head(x, age_output: AgeOutput, name: str = "age"):
    """Final age layer for the given output kind."""
    activation = age_output.activation if age_output.kind != "distribution" else "softmax"
    return layers.Dense(age_output.units, activation=activation, name=name,
                        kernel_initializer="glorot_normal")(x)


def gender_head(x, name: str = "gender"):
    return layers.Dense(1, activation="sigmoid", name=name, kernel_initializer="glorot_normal")(x)


def _conv_bn_relu_pool(x, filters: int, spatial_dropout: float, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_uniform",
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)  # before ReLU, as in seed 001
    x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    if spatial_dropout:
        x = layers.SpatialDropout2D(spatial_dropout, name=f"{name}_sdrop")(x)
    return x


def multitask_cnn(input_shape, age_output: AgeOutput, augment: dict, seed: int,
                  shared_filters=(32, 64, 96), branch_filters=(128, 160), dense_units=64,
                  dropout=0.4, spatial_dropout=0.1) -> keras.Model:
    """Seed 001 model A: three shared conv-BN-ReLU-pool blocks, then an age and a gender branch of
    two such blocks each, flatten, dense-BN-ReLU-dropout and a one-unit output (linear age,
    sigmoid gender). He-uniform init before ReLU, Glorot-normal on the outputs."""
    inputs = keras.Input(input_shape, name="image")
    x = augmentation(augment, seed)(inputs)
    x = layers.Rescaling(1 / 255.0, name="scale")(x)
    for i, f in enumerate(shared_filters):
        x = _conv_bn_relu_pool(x, f, spatial_dropout, f"shared{i + 1}")
    outputs = {}
    for task in ("age", "gender"):
        b = x
        for i, f in enumerate(branch_filters):
            b = _conv_bn_relu_pool(b, f, spatial_dropout, f"{task}{i + 1}")
        b = layers.Flatten(name=f"{task}_flat")(b)
        b = layers.Dense(dense_units, use_bias=False, kernel_initializer="he_uniform",
                         name=f"{task}_dense")(b)
        b = layers.BatchNormalization(name=f"{task}_dense_bn")(b)
        b = layers.ReLU(name=f"{task}_dense_relu")(b)
        b = layers.Dropout(dropout, seed=seed, name=f"{task}_dropout")(b)
        outputs[task] = age_head(b, age_output) if task == "age" else gender_head(b)
    return keras.Model(inputs, outputs, name="multitask_cnn")


def _residual_block(x, filters: int, stride: int, name: str):
    """Pre-activation-free basic residual block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2", gamma_initializer="zeros")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def compact_resnet(input_shape, age_output: AgeOutput, augment: dict, seed: int,
                   stem_filters=32, stage_filters=(32, 64, 128, 256), dropout=0.3) -> keras.Model:
    """The default network: a small residual multi-task CNN for 2-core CPUs.

    A stride-2 stem halves the input at once (64 px -> 32 px), then one basic residual block
    per stage (the first at stride 1, the rest at stride 2), global average pooling, and two
    light heads on the shared features: the age distribution over 0..116 years and gender.
    """
    inputs = keras.Input(input_shape, name="image")
    x = augmentation(augment, seed)(inputs)
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(x)
    x = layers.Conv2D(stem_filters, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, f in enumerate(stage_filters):
        x = _residual_block(x, f, 1 if i == 0 else 2, f"stage{i + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    return keras.Model(inputs, {"age": age_head(x, age_output), "gender": gender_head(x)},
                       name="compact_resnet")
