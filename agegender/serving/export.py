"""Exporting a trained model for deployment: TensorFlow Lite, through ``tf.lite`` in the tensorflow
wheel (the optional ``export/dvc.yaml`` stage; docs/predict.md, "Deploying: TensorFlow Lite").

The ``.tflite`` file holds the network as it runs at inference: the augmentation layers are left
out (traced with ``training=False``), the custom layers (``RandomFraming``, ``VGGPreprocess``)
are plain ops, and every layer computes in float32: a mixed-precision model (``mixed_bfloat16``,
``mixed_float16``) is converted to float32 first (:func:`agegender.serving.saved.as_float32`), since
TFLite's builtin kernels have no bfloat16. Its one signature, ``serving_default``, takes
``image``: uint8 pixels (N, S, S, C) as :func:`agegender.data.images.to_array` makes them, and
returns ``age`` (N, units) and ``gender`` (N, 1), the Keras model's raw outputs.

What decodes them (family, profile, age decoding) is written beside it as JSON, the same
:class:`~agegender.serving.saved.ModelInfo` the ``.keras`` file carries, so :class:`TFLiteModel`
needs nothing else.
"""
from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np

from agegender.serving.saved import ModelInfo, as_float32, load_model


def to_tflite(model) -> bytes:
    """The TFLite flat buffer of a Keras model taking (N, S, S, C) pixels: its inference call
    (``training=False``) on uint8 input, in float32."""
    import keras
    import tensorflow as tf

    if any(layer.dtype_policy.compute_dtype != "float32" for layer in _layers(model)):
        model = as_float32(model)
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.uint8, name="image")

    def serve(image):
        return model(tf.cast(image, "float32"), training=False)

    archive.add_endpoint("serving_default", serve, [spec])
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(folder).convert()


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # nested models (the augmentation, a VGG base)
            yield from _layers(layer)


def info_path(tflite_path: str | Path) -> Path:
    """Where the :class:`ModelInfo` of a ``.tflite`` file is: beside it, ``model.tflite.json``."""
    return Path(f"{tflite_path}.json")


def export_tflite(keras_path: str | Path, out: str | Path) -> ModelInfo:
    """Convert the saved model ``keras_path`` to ``out`` (``.tflite``) and write its
    :class:`ModelInfo` (precision float32) to :func:`info_path`. Returns that info."""
    model, info = load_model(keras_path, precision="float32")
    data = to_tflite(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    info_path(out).write_text(json.dumps(info.to_json(), indent=2) + "\n")
    return info


class TFLiteModel:
    """An exported model run by the TFLite interpreter: :meth:`predict_outputs` and
    :meth:`predict` give what :mod:`agegender.serving.inference` gives for the Keras model."""

    def __init__(self, path: str | Path, info: ModelInfo | None = None, threads: int | None = None):
        import tensorflow as tf

        with warnings.catch_warnings():  # tf.lite.Interpreter warns it will move to ai_edge_litert
            warnings.simplefilter("ignore", UserWarning)
            self.interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        self.info = info or ModelInfo.from_json(json.loads(info_path(path).read_text()))

    def predict_outputs(self, images: np.ndarray, batch_size: int = 64,
                        tta_flip: bool = False) -> dict[str, np.ndarray]:
        """uint8 images (N, S, S, C) -> ``{"age": (N, units), "gender": (N,)}``; with
        ``tta_flip`` averaged with the mirrored faces, as the predictor does."""
        images = np.asarray(images, dtype=np.uint8)
        outs = [self.runner(image=images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        out = {k: np.concatenate([o[k] for o in outs]) for k in ("age", "gender")}
        if tta_flip:
            mirrored = self.predict_outputs(images[:, :, ::-1], batch_size)
            out = {k: (out[k].reshape(mirrored[k].shape) + mirrored[k]) / 2.0 for k in out}
        return {"age": out["age"], "gender": out["gender"].reshape(-1)}

    def predict(self, images: np.ndarray, batch_size: int = 64,
                tta_flip: bool = False) -> dict[str, np.ndarray]:
        """Decoded predictions (``pred_age`` years, ``gender_prob`` P(female) after the model's saved
        gender temperature, if any, ``pred_bin``) by the project's one decoder,
        :func:`agegender.serving.inference.decode_outputs`, as the Keras model is decoded."""
        from agegender.serving.inference import decode_outputs

        return decode_outputs(self.predict_outputs(images, batch_size, tta_flip), self.info.age_output,
                              self.info.gender_temperature)
