"""A recipe becomes a network: the family's builder called with the recipe's architecture,
augmentation and precision, after every seed is set. Used by training, the cached features and the
benchmarks alike (no optimizer, losses or data here: agegender.training.setup)."""
from __future__ import annotations

import keras
import tensorflow as tf

from agegender import hardware
from agegender.data.images import get_profile
from agegender.model import networks
from agegender.model.families import Family, get_family
from agegender.params import Recipe


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds plus deterministic TF kernels: same params, same model."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def build_model(family: str | Family, recipe: Recipe, seed: int, precision: str | None = None) -> keras.Model:
    """The family's network (uncompiled), with the recipe's architecture, augmentation and precision.

    ``precision`` (default: the recipe's, with ``auto`` resolved for this machine by
    :func:`agegender.hardware.choose_precision`, the one resolver): under ``mixed_bfloat16`` /
    ``mixed_float16`` layers compute in 16 bits with float32 weights, except the float32 heads;
    the layers keep their policy when the model is saved. Raises :class:`agegender.params.ParamsError` for an
    architecture key the family's builder does not take.
    """
    family = get_family(family) if isinstance(family, str) else family
    precision = precision or hardware.choose_precision(recipe.precision, hardware.cpu_info(),
                                                       hardware.gpu_info(), cpu_bf16=family.cpu_bf16)
    build = getattr(networks, family.builder)
    architecture = family.settings(recipe)  # typed by the family's schema (families.py)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)  # layers take the policy when created
    try:
        return build(get_profile(family.profile).shape, family.age_output,
                     recipe.augment.model_dump(), seed, **architecture)
    finally:
        keras.mixed_precision.set_global_policy(previous)
