"""The training-time augmentation of every network: one ``augment`` layer built from a recipe's
:class:`~agegender.params.Augment` (Keras' random layers, plus the project's own re-framing and
pixel noise, registered with Keras so saved models load in safe mode). Keras runs them in training
only: at inference they pass the pixels through."""
from __future__ import annotations

import math

import keras
from keras import layers

from agegender.params import Augment


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
