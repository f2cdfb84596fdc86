"""Running a trained model: the one place model outputs become ages, groups and gender."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from agegender.model.targets import AgeOutput
from agegender.serving.calibration import (
    MIN_FACES,
    GenderCalibration,
    apply_temperature,
    fit_temperature,
    logits,
)
from agegender.data.datasets import make_dataset


def predict_outputs(model, images, batch_size: int = 256,
                    tta_flip: bool = False) -> dict[str, np.ndarray]:
    """Raw network outputs for uint8 images (N, S, S, C) (an array or ``ImageFiles``):
    ``{"age": (N, units), "gender": (N,)}``.

    With ``tta_flip`` each face is also predicted mirrored and the two outputs are averaged.
    """
    out = model.predict(make_dataset(images, None, batch_size), verbose=0)
    if tta_flip:  # mirrored batch by batch (axis 2: width), never as a copy of all the images
        mirrored = make_dataset(images, None, batch_size).map(lambda x: tf.reverse(x, axis=[2]))
        mirrored = model.predict(mirrored, verbose=0)
        out = {k: (out[k] + mirrored[k]) / 2.0 for k in out}
    return {"age": np.asarray(out["age"]), "gender": np.asarray(out["gender"]).reshape(-1)}


def decode_outputs(outputs: dict[str, np.ndarray], age_output: AgeOutput,
                   gender_temperature: float | None = None) -> dict[str, np.ndarray]:
    """Raw outputs -> ``pred_age`` (years), ``gender_prob`` (P(female), divided in logit space by
    ``gender_temperature`` when given: :mod:`agegender.serving.calibration`), ``gender_prob_raw``
    (the network's own P(female)), ``age_low`` / ``age_high`` (the 10th and 90th percentile of the
    age distribution, years; absent for a regression output) and, for bins models, ``pred_bin``
    (arg-max bin of the model's own scheme). Every array is (N,)."""
    raw = np.asarray(outputs["gender"], dtype=np.float64)
    decoded = {"pred_age": age_output.decode(outputs["age"]),
               "gender_prob": apply_temperature(raw, gender_temperature), "gender_prob_raw": raw}
    interval = age_output.interval(outputs["age"])
    if interval is not None:
        decoded["age_low"], decoded["age_high"] = interval
    pred_bin = age_output.predicted_bin(outputs["age"])
    if pred_bin is not None:
        decoded["pred_bin"] = pred_bin
    return decoded


def predict(model, age_output: AgeOutput, images: np.ndarray, batch_size: int = 256,
            tta_flip: bool = False, gender_temperature: float | None = None) -> dict[str, np.ndarray]:
    """:func:`predict_outputs` then :func:`decode_outputs`: uint8 images -> decoded predictions."""
    return decode_outputs(predict_outputs(model, images, batch_size, tta_flip), age_output,
                          gender_temperature)


def fit_gender_calibration(model, images, labels, held_out: str,
                           batch_size: int = 256) -> GenderCalibration | None:
    """Fit the gender temperature of ``model`` on held-out uint8 ``images`` (N, S, S, C) with label
    rows ``labels`` (N, 3) [age, gender, race]: their P(female) averaged with the mirrored face's
    (as evaluate and the predictor predict by default), as logits, through
    :func:`~agegender.serving.calibration.fit_temperature`. None when fewer than ``MIN_FACES`` (100)
    faces are held out."""
    if len(labels) < MIN_FACES:
        return None
    return gender_calibration(predict_outputs(model, images, batch_size, tta_flip=True)["gender"],
                              labels, held_out)


def gender_calibration(prob, labels, held_out: str) -> GenderCalibration | None:
    """The gender temperature fitted to P(female) ``prob`` (N,) of held-out faces with label rows
    ``labels`` (N, 3); None under ``MIN_FACES`` faces. (:func:`fit_gender_calibration` predicts
    ``prob`` from images; a transfer head reads them off its cached features.)"""
    if len(labels) < MIN_FACES:
        return None
    return GenderCalibration(round(fit_temperature(logits(np.asarray(prob)), np.asarray(labels)[:, 1]), 4),
                             int(len(labels)), held_out)
