"""``tf.data`` input pipelines over the cached uint8 arrays of the preprocess stage."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from stages.targets import AgeOutput


def targets(labels: np.ndarray, age_output: AgeOutput) -> dict[str, np.ndarray]:
    """Label rows (N, 3) [age, gender, race] -> Keras targets ``{"age": ..., "gender": (N, 1)}``."""
    return {"age": age_output.encode(labels[:, 0]),
            "gender": labels[:, 1:2].astype(np.float32)}


def make_dataset(images: np.ndarray, target: dict[str, np.ndarray] | None, batch_size: int,
                 shuffle: bool = False, seed: int = 0,
                 sample_weight: dict[str, np.ndarray] | None = None) -> tf.data.Dataset:
    """Batches of (uint8 images, targets), or of images alone when ``target`` is None; with
    ``sample_weight`` (per-output (N,) weights, same keys as ``target``) batches of
    (images, targets, weights).

    Shuffling reshuffles each epoch from ``seed``, so a run is repeatable. Pixels stay uint8 until
    the network's own rescaling layer, which keeps the in-memory cache four times smaller.
    """
    images = tf.convert_to_tensor(images)  # captured by reference, not copied into the graph
    target = None if target is None else {k: tf.convert_to_tensor(v) for k, v in target.items()}
    weight = (None if sample_weight is None
              else {k: tf.convert_to_tensor(v, dtype=tf.float32) for k, v in sample_weight.items()})
    index = tf.data.Dataset.range(len(images))
    if shuffle:
        index = index.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    index = index.batch(batch_size)

    def gather(i):
        x = tf.gather(images, i)
        if target is None:
            return x
        y = {k: tf.gather(v, i) for k, v in target.items()}
        if weight is None:
            return x, y
        return x, y, {k: tf.gather(v, i) for k, v in weight.items()}

    # Fixed parallelism, autotuning off: TensorFlow 2.21 joins the autotuner's thread when an
    # epoch's iterator is destroyed, and that thread sleeps up to a minute between wake-ups, so
    # every epoch after the first stalled ~50 s with both cores idle. A gather needs no tuning.
    options = tf.data.Options()
    options.autotune.enabled = False
    return (index.map(gather, num_parallel_calls=2, deterministic=True).prefetch(2)
            .with_options(options))
