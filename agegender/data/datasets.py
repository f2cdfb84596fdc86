"""``tf.data`` input pipelines over the cached uint8 arrays of the preprocess stage, in memory
(``np.ndarray``) or read from disk a batch at a time (``agegender.data.arrays.ImageFiles``): what
training and prediction both read images through. The targets they carry are made by the model
room (:func:`agegender.model.targets.keras_targets`)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def make_dataset(images, target: dict[str, np.ndarray] | None, batch_size: int,
                 shuffle: bool = False, seed: int = 0,
                 sample_weight: dict[str, np.ndarray] | None = None,
                 mixup_alpha: float = 0.0, epochs: range | None = None) -> tf.data.Dataset:
    """Batches of (uint8 images, targets), or of images alone when ``target`` is None; with
    ``sample_weight`` (per-output (N,) weights, same keys as ``target``) batches of
    (images, targets, weights).

    ``mixup_alpha`` > 0 (training only) blends each batch with itself in reverse order, images,
    targets and weights alike, by ``lam ~ Beta(alpha, alpha)`` per face (Zhang et al., mixup);
    images then come as float32.

    Shuffling reshuffles each epoch from ``seed``, so a run is repeatable. With ``epochs`` (a range
    of epoch numbers) the dataset holds those epochs one after another, each shuffled by
    ``(seed, epoch)`` alone: epoch k gets the same order (and mixup draws) whether training started
    at 0 or resumed at k; fit it with ``steps_per_epoch``. Pixels stay uint8 until the network's own
    rescaling layer, which keeps the in-memory cache four times smaller.

    ``images`` (N, S, S, C) uint8 is an array held in memory, or anything else with ``len``,
    ``shape``, ``dtype`` and ``take(indices) -> (B, S, S, C)`` (``ImageFiles``), read a batch at a
    time: the batches are the same either way, bit for bit. Cached features
    (``agegender.training.features.FlipPairs``, float16) hold each face and its mirror image: with
    ``epochs`` and ``shuffle`` each face's row is the face's or the mirror's at random, from
    ``(seed, epoch, batch)`` alone (the flip of the cached path); otherwise always the face's.
    """
    if mixup_alpha < 0 or (mixup_alpha and target is None):
        raise ValueError(f"mixup_alpha={mixup_alpha}: mixup needs alpha >= 0 and targets to blend")
    if isinstance(images, np.ndarray):
        pixels = tf.convert_to_tensor(images)  # captured by reference, not copied into the graph

        def fetch(i):
            return tf.gather(pixels, i)
    else:  # read each batch's rows from disk
        def fetch(i, flips=None):
            args = [i] if flips is None else [i, flips]
            x = tf.numpy_function(images.take, args, tf.as_dtype(images.dtype), stateful=False)
            return tf.ensure_shape(x, (None, *images.shape[1:]))
    random_flips = getattr(images, "flip_pairs", False) and shuffle and epochs is not None
    target = None if target is None else {k: tf.convert_to_tensor(v) for k, v in target.items()}
    weight = (None if sample_weight is None
              else {k: tf.convert_to_tensor(v, dtype=tf.float32) for k, v in sample_weight.items()})
    n = len(images)
    if epochs is not None:  # stateless: each epoch's order and mixup draws from (seed, epoch) only
        def epoch_batches(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            batches = tf.data.Dataset.from_tensor_slices(order if shuffle else tf.range(n, dtype=tf.int64))
            batches = batches.batch(batch_size).enumerate()
            return batches.map(lambda j, i: (i, tf.stack([epoch + 7919 * seed, j])))

        index = tf.data.Dataset.range(epochs.start, epochs.stop).flat_map(epoch_batches)
        # flat_map hides the length: state it, so Keras knows where an epoch of batches ends
        index = index.apply(tf.data.experimental.assert_cardinality(len(epochs) * -(-n // batch_size)))
        if not (mixup_alpha or random_flips):
            index = index.map(lambda i, _: i)
    else:
        index = tf.data.Dataset.range(n)
        if shuffle:
            index = index.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        index = index.batch(batch_size)
        if mixup_alpha:  # one random seed per batch, new each epoch, so mixup repeats run to run
            index = tf.data.Dataset.zip(index, tf.data.Dataset.random(
                seed=seed, rerandomize_each_iteration=True).map(lambda r: tf.stack([r, seed])))

    def gather(i, batch_seed=None):
        if random_flips:  # mixup is refused with cached features (agegender.params.Recipe)
            x = fetch(i, tf.random.stateless_uniform(tf.shape(i), seed=batch_seed) < 0.5)
        else:
            x = fetch(i)
        if target is None:
            return x
        y = {k: tf.gather(v, i) for k, v in target.items()}
        w = None if weight is None else {k: tf.gather(v, i) for k, v in weight.items()}
        if mixup_alpha:
            x, y, w = _mixup(x, y, w, mixup_alpha, batch_seed)
        return (x, y) if w is None else (x, y, w)

    # Fixed parallelism, autotuning off: TensorFlow 2.21 joins the autotuner's thread when an
    # epoch's iterator is destroyed, and that thread sleeps up to a minute between wake-ups, so
    # every epoch after the first stalled ~50 s with both cores idle. A gather needs no tuning.
    options = tf.data.Options()
    options.autotune.enabled = False
    return (index.map(gather, num_parallel_calls=2, deterministic=True).prefetch(2)
            .with_options(options))


def _mixup(x, y: dict, w: dict | None, alpha: float, seed):
    """Blend a batch with its reverse: ``lam * a + (1 - lam) * reversed(a)`` for the images
    (N, H, W, C), every target (N, K) and weight (N,), with one ``lam`` per face."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    n = tf.shape(x)[0:1]
    g1 = tf.random.stateless_gamma(n, seeds[0], alpha)
    g2 = tf.random.stateless_gamma(n, seeds[1], alpha)
    lam = g1 / (g1 + g2)

    def blend(a):
        a = tf.cast(a, tf.float32)
        shape = tf.concat([n, tf.ones(tf.rank(a) - 1, tf.int32)], 0)
        lam_a = tf.reshape(lam, shape)
        return lam_a * a + (1.0 - lam_a) * tf.reverse(a, axis=[0])

    return (blend(x), {k: blend(v) for k, v in y.items()},
            None if w is None else {k: blend(v) for k, v in w.items()})
