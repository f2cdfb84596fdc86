"""Temperature scaling of the gender output (Guo et al. 2017): a confidence that means what it says.

The gender head gives P(female) = sigmoid(z). A network can be right most of the time yet say 99 %
where it is right 90 % of the time; dividing its logit by one temperature ``T`` fitted on faces it
never trained on, ``sigmoid(z / T)``, makes the stated probability match how often it is right
(``T > 1`` softens an over-confident head, ``T < 1`` sharpens a shy one). ``T > 0`` never moves a
probability across 0.5, so accuracy, F1 and ROC AUC are unchanged; only the confidence changes.

Which held-out faces (the train stage, with :func:`agegender.serving.inference.fit_gender_calibration`):

- ``final_fit: false``: the val split, which that run never trains on (early stopping reads it,
  which does not touch the gender logits' scale);
- ``final_fit: true`` with ``calibration_holdout: f`` (a recipe key, 0 = off, the default): a
  random share ``f`` of train and of val is held out of the final fit
  (:func:`agegender.data.arrays.hold_out`) and the temperature is fitted on it (the final fit then
  trains on the other ``1 - f``);
- ``final_fit: true`` without a holdout: no temperature; the model behaves as before.

The temperature travels inside the saved model (:mod:`agegender.serving.saved`, ``gender_calibration``)
and every prediction path applies it (:func:`agegender.serving.inference.decode_outputs`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] before the logit: float32 sigmoids hit 0 and 1
BOUNDS = (0.05, 20.0)  # the temperatures searched; beyond them the fit says the held-out set is too small
MIN_FACES = 100  # fewer held-out faces than this: no temperature (the fit would be mostly noise)


@dataclass(frozen=True)
class GenderCalibration:
    """A fitted temperature: ``temperature`` (> 0), the number of held-out ``faces`` it was fitted
    on and ``held_out``: ``"val"`` (val of a validation run) or ``"holdout"`` (a share held out of
    the final fit)."""
    temperature: float
    faces: int
    held_out: str

    def to_json(self) -> dict:
        return {"temperature": self.temperature, "faces": self.faces, "held_out": self.held_out}

    @classmethod
    def from_json(cls, data: dict | None) -> "GenderCalibration | None":
        if data is None:
            return None
        return cls(float(data["temperature"]), int(data["faces"]), str(data["held_out"]))


def logits(prob) -> np.ndarray:
    """P(female) (N,) -> logits log(p / (1 - p)) (N,) float64, p clipped to [EPS, 1 - EPS]."""
    p = np.clip(np.asarray(prob, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(prob, temperature: float | None) -> np.ndarray:
    """P(female) (N,) -> sigmoid(logit(p) / T) (N,) float64; ``None`` or 1: ``p`` unchanged."""
    p = np.asarray(prob, dtype=np.float64)
    if temperature is None or temperature == 1.0:
        return p
    return 1.0 / (1.0 + np.exp(-logits(p) / float(temperature)))


def fit_temperature(logit, labels) -> float:
    """The temperature ``T`` minimising the mean binary cross-entropy (negative log-likelihood) of
    ``sigmoid(logit / T)`` against ``labels`` (N,) in {0, 1}, for logits (N,) of held-out faces
    (e.g. :func:`logits` of their P(female)). One-dimensional and convex in 1/T, so a bounded
    scalar search (scipy's Brent) finds it; searched within :data:`BOUNDS`."""
    from scipy.optimize import minimize_scalar

    z = np.asarray(logit, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if len(z) == 0 or len(z) != len(y):
        raise ValueError(f"fit_temperature: {len(z)} logits and {len(y)} labels")

    def nll(log_t):
        s = z / np.exp(log_t)
        # log(1 + e^s) - y s, written to stay finite for large |s|
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    found = minimize_scalar(nll, bounds=np.log(BOUNDS), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))
