"""How a network's age output is trained and read back in years.

Three kinds of age output exist among the model families:

- ``regression``: one unit, the age in years (linear or ReLU), trained with MSE.
- ``bins``: one unit per bin of a :class:`~stages.bins.BinScheme` (softmax or sigmoid), trained on
  one-hot bin targets; read back as the expected age of the bin distribution.
- ``distribution``: one unit per year 0..116 (softmax), trained on a Gaussian label distribution
  centred on the true age (Gao et al., DLDL); read back as the expected age.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.bins import MAX_AGE, BinScheme

AGES = np.arange(MAX_AGE + 1, dtype=np.float64)  # classes of the distribution output


@dataclass(frozen=True)
class AgeOutput:
    kind: str  # "regression" | "bins" | "distribution"
    scheme: BinScheme | None = None  # for "bins"
    activation: str = "linear"  # final activation: linear/relu, softmax/sigmoid
    sigma: float = 2.0  # years, width of the "distribution" targets

    def __post_init__(self):
        if self.kind not in ("regression", "bins", "distribution"):
            raise ValueError(f"unknown age output kind {self.kind!r}")
        if self.kind == "bins" and self.scheme is None:
            raise ValueError("a 'bins' age output needs a bin scheme")

    @property
    def units(self) -> int:
        return {"regression": 1, "bins": self.scheme.n_bins if self.scheme else 0,
                "distribution": len(AGES)}[self.kind]

    @property
    def loss(self) -> str:
        if self.kind == "regression":
            return "mse"
        if self.kind == "bins" and self.activation == "sigmoid":
            return "binary_crossentropy"  # seed 004 trains 20 independent sigmoids
        return "categorical_crossentropy"  # for soft targets this is KL up to a constant

    def encode(self, ages) -> np.ndarray:
        """Ages in years (N,) -> training targets: (N, 1) years or (N, K) probabilities, float32."""
        ages = np.asarray(ages, dtype=np.float64)
        if self.kind == "regression":
            return ages.reshape(-1, 1).astype(np.float32)
        if self.kind == "bins":
            return np.eye(self.scheme.n_bins, dtype=np.float32)[self.scheme.encode(ages)]
        logits = -0.5 * ((AGES[None, :] - ages[:, None]) / self.sigma) ** 2
        dist = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (dist / dist.sum(axis=1, keepdims=True)).astype(np.float32)

    def decode(self, outputs) -> np.ndarray:
        """Network age outputs (N, units) -> predicted age in years (N,) float64."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if self.kind == "regression":
            return outputs.reshape(-1)
        if self.kind == "bins":
            return self.scheme.decode(outputs)
        p = np.clip(outputs, 0, None)
        return (p / p.sum(axis=1, keepdims=True)) @ AGES

    def decode_tensor(self, outputs):
        """Same as :meth:`decode` on a backend tensor (N, units) -> (N,), for Keras metrics."""
        from keras import ops

        if self.kind == "regression":
            return ops.reshape(outputs, (-1,))
        values = self.scheme.centres() if self.kind == "bins" else AGES
        p = ops.maximum(outputs, 0.0)
        p = p / ops.maximum(ops.sum(p, axis=1, keepdims=True), 1e-12)
        return ops.matmul(p, ops.convert_to_tensor(values.reshape(-1, 1), dtype=p.dtype))[:, 0]

    def mae_metric(self):
        """Keras metric: MAE in years between decoded targets and decoded outputs. Exact for
        regression, within a fraction of a year for distributions (the target Gaussian is cut
        at 0 and 116), and against the bin centre for bins."""
        import keras

        def mae(y_true, y_pred):
            return keras.ops.abs(self.decode_tensor(y_true) - self.decode_tensor(y_pred))

        return keras.metrics.MeanMetricWrapper(mae, name="mae")

    def predicted_bin(self, outputs) -> np.ndarray | None:
        """Arg-max bin of a bins output (N,), or None for outputs without bins of their own."""
        if self.kind != "bins":
            return None
        return np.asarray(outputs).argmax(axis=1)
