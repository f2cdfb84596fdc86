"""How a network's age output is trained and read back in years.

Three kinds of age output exist among the model families:

- ``regression``: one unit, the age in years (linear or ReLU), trained with MSE.
- ``bins``: one unit per bin of a :class:`~agegender.data.bins.BinScheme` (softmax or sigmoid), trained on
  one-hot bin targets; read back as the expected age of the bin distribution.
- ``distribution``: one unit per year 0..116 (softmax), trained on a Gaussian label distribution
  centred on the true age (Gao et al., DLDL); read back as the expected age.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agegender.data.bins import FIVE_YEAR, LIFE_STAGES, MAX_AGE, BinScheme

AGES = np.arange(MAX_AGE + 1, dtype=np.float64)  # classes of the distribution output
INTERVAL = (0.1, 0.9)  # the age interval the predictor shows: 10th to 90th percentile (80 %)


def quantile(probs, lower, upper, q: float) -> np.ndarray:
    """The ``q``-quantile (0 < q < 1) of piecewise-uniform distributions: ``probs`` (N, K) class
    weights (normalised here; a row of zeros counts as uniform), class ``k`` spread evenly over
    ``[lower[k], upper[k]]`` (K,), classes in increasing order. Returns (N,) in the units of the
    edges (years)."""
    p = np.asarray(probs, dtype=np.float64)
    total = p.sum(axis=1, keepdims=True)
    p = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / p.shape[1])
    cdf = np.cumsum(p, axis=1)
    k = np.minimum((cdf < q).sum(axis=1), p.shape[1] - 1)  # first class whose cdf reaches q
    rows = np.arange(len(p))
    before = cdf[rows, k] - p[rows, k]
    share = np.clip((q - before) / np.where(p[rows, k] > 0, p[rows, k], 1.0), 0.0, 1.0)
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    return lower[k] + share * (upper[k] - lower[k])


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

    def interval(self, outputs, low: float = INTERVAL[0], high: float = INTERVAL[1]
                 ) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``low`` and ``high`` quantiles (default the 10th and 90th percentile: an 80 %
        interval) of the age distribution the network outputs, in years: ``(low (N,), high (N,))``.

        A ``distribution`` output is a probability per whole year 0..116; a ``bins`` output one per
        bin (normalised first, as :meth:`decode` does). Each class's probability is spread evenly
        over its span of ages (year ``a``: ``[a - 0.5, a + 0.5]``, clipped at 0; bin ``i``:
        ``[edges[i], edges[i+1]]``, the first from 0, the last to 117), so the quantiles are
        continuous, not stuck on class edges. None for a ``regression`` output: one number, no
        distribution.
        """
        if self.kind == "regression":
            return None
        p = np.clip(np.asarray(outputs, dtype=np.float64), 0.0, None)
        if self.kind == "distribution":
            lower, upper = np.maximum(AGES - 0.5, 0.0), AGES + 0.5
        else:
            edges = np.asarray(self.scheme.edges, dtype=np.float64)
            lower = np.concatenate([[0.0], edges[1:]])
            upper = np.append(edges[1:], max(MAX_AGE, edges[-1]) + 1.0)
        return quantile(p, lower, upper, low), quantile(p, lower, upper, high)

    def predicted_bin(self, outputs) -> np.ndarray | None:
        """Arg-max bin of a bins output (N,), or None for outputs without bins of their own."""
        if self.kind != "bins":
            return None
        return np.asarray(outputs).argmax(axis=1)


def class_weights(bin_index, n_bins: int) -> np.ndarray:
    """'Balanced' class weights ``n / (k * n_c)`` from bin indices (N,), shape (n_bins,) float64.

    ``n_c`` is the count of bin ``c`` and ``k`` the number of bins that occur, so the weight of
    the average training sample is 1 and every occurring bin carries the same total weight.
    Bins absent from the data get weight 0 (nothing to weigh).
    """
    counts = np.bincount(np.asarray(bin_index, dtype=np.int64), minlength=n_bins).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_bins)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def balanced_sample_weights(ages, age_output: AgeOutput) -> np.ndarray:
    """Per-sample weights (N,) float32 for the age loss that balance the age bins of the training
    set: the output's own bins for a ``bins`` output, the 20 five-year groups otherwise.

    Keras applies class weights to one-output models only, so every variant with
    ``class_balance: true`` weighs its age loss through these per-sample weights instead.
    """
    scheme = age_output.scheme if age_output.kind == "bins" else FIVE_YEAR
    index = scheme.encode(np.asarray(ages))
    return class_weights(index, scheme.n_bins)[index].astype(np.float32)


def group_sample_weights(labels, power: float) -> np.ndarray:
    """Per-sample weights (N,) float32 that lift the thin race x gender x life-stage cells of the
    training set (the cells of the coverage report, :mod:`agegender.data.coverage`).

    ``labels`` (N, 3) holds rows [age, gender, race] (race -1 = unknown, a group of its own). A face
    in a cell of ``n_c`` faces weighs ``(n / (k * n_c)) ** power`` (``k`` occupied cells), rescaled
    so that the average face weighs 1: ``power`` 1 gives every cell the same total weight, 0 every
    face the same weight, 0.5 the middle (a cell of a hundredth of the average size counts ten
    times per face, not a hundred).
    """
    labels = np.asarray(labels)
    stage = LIFE_STAGES.encode(labels[:, 0])
    cell = (labels[:, 2].astype(np.int64) + 1) * 1000 + labels[:, 1].astype(np.int64) * 100 + stage
    _, index, counts = np.unique(cell, return_inverse=True, return_counts=True)
    weights = (len(labels) / (len(counts) * counts.astype(np.float64))) ** float(power)
    per_face = weights[index]
    return (per_face / per_face.mean()).astype(np.float32)


def keras_targets(labels: np.ndarray, age_output: AgeOutput, chunk: int = 65536) -> dict[str, np.ndarray]:
    """Label rows (N, 3) [age, gender, race] -> Keras targets ``{"age": ..., "gender": (N, 1)}``.

    Ages are encoded ``chunk`` rows at a time (each row's encoding depends on its own age only), so
    the encoder's float64 temporaries do not grow with N."""
    first = age_output.encode(labels[:chunk, 0])
    age = np.empty((len(labels), *first.shape[1:]), dtype=first.dtype)
    age[:chunk] = first
    for start in range(chunk, len(labels), chunk):
        age[start:start + chunk] = age_output.encode(labels[start:start + chunk, 0])
    return {"age": age, "gender": labels[:, 1:2].astype(np.float32)}
