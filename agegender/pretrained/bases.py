"""The pretrained bases by name: the keras.applications networks and the HSE MobileNet, built
without their top as a nested model named after the base, with the weights asked for."""
from __future__ import annotations

import functools

import keras

from agegender.pretrained.hse_mobilenet import hse_mobilenet
from agegender.pretrained.imagenet import missing_imagenet
from agegender.pretrained.weights import check_weights_file, imagenet_file, is_random


def _applications() -> dict:
    """The keras.applications builders of the transfer bases, by their Keras model name (the
    nested layer's name; EfficientNetV2's ImageNet file is named after it, so it keeps its own)."""
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
    if is_random(weights):
        return apps[base](include_top=False, weights=None, input_shape=input_shape, name=base)
    if str(weights).lower() == "imagenet":
        imagenet_file(base)  # a base trained on faces has none: one line saying what to set
        try:
            return apps[base](include_top=False, weights="imagenet", input_shape=input_shape, name=base)
        except Exception as exc:  # Keras raises a bare Exception for a failed download
            raise missing_imagenet(base, exc) from exc
    path = check_weights_file(base, weights)
    return apps[base](include_top=False, weights=str(path), input_shape=input_shape, name=base)
