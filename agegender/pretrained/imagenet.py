"""ImageNet weights of the keras.applications bases: the files Keras keeps in its cache, where it
downloads them from, and the one-line error when they can be had from neither."""
from __future__ import annotations

import os
from pathlib import Path

from agegender.errors import UserError

# what keras.applications caches under <KERAS_HOME>/models/ for include_top=False, per base (the
# Keras model's own name), and the folder of keras-applications it is served from
WEIGHT_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "vgg19": "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "efficientnetv2-b0": "efficientnetv2-b0_notop.h5",
}
WEIGHT_FOLDERS = {"vgg16": "vgg16", "vgg19": "vgg19", "efficientnetv2-b0": "efficientnet_v2"}
WEIGHT_URL = "https://storage.googleapis.com/tensorflow/keras-applications/{folder}/{file}"


class VGGWeightsError(UserError):
    """Pretrained weights for a base (VGG or the modern one) could not be had (no file, no cached
    copy, no download)."""


def weight_url(base: str) -> str:
    """Where keras.applications downloads ``base``'s ImageNet weights (include_top=False)."""
    return WEIGHT_URL.format(folder=WEIGHT_FOLDERS[base], file=WEIGHT_FILES[base])


def keras_home() -> str:
    """Keras' cache root (KERAS_HOME or ~/.keras). Missing public API: only the private
    ``keras.src.backend.config.keras_home`` says it (the project's one private Keras call outside
    agegender/training/keras_compat.py, kept here so this room needs nothing above it); if that
    moves, the documented rule."""
    try:
        from keras.src.backend.config import keras_home as private_keras_home
        return private_keras_home()
    except ImportError:
        return os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))


def keras_cache_file(filename: str, cache_subdir: str = "models") -> Path:
    """Where ``keras.utils.get_file`` looks for (and would download) ``filename``: KERAS_HOME or
    ~/.keras, or /tmp/.keras when that folder is not writable (the same rule as Keras)."""
    base = os.path.expanduser(keras_home())
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return Path(base) / cache_subdir / filename


def missing_imagenet(base: str, exc: BaseException, family: str | None = None) -> VGGWeightsError:
    """The one-line error for ImageNet weights of ``base`` that are neither cached nor downloadable;
    ``family``: the model family whose params set them (default: the family named as the base)."""
    cached = keras_cache_file(WEIGHT_FILES[base])
    url = weight_url(base)
    family = family or base
    return VGGWeightsError(
        f"ImageNet weights for {base} could not be loaded: Keras looked for {cached} and "
        f"could not download it ({type(exc).__name__}: {exc}). Provide the file: download "
        f"{url} on a machine with internet and copy it to {cached}, or set "
        f"models.{family}.architecture.weights to a local path of that file "
        f"(dvc exp run -S model={family} -S models.{family}.architecture.weights=/path/to/file.h5),"
        f" or to null to train from random initialisation.")
