"""The tf.data input pipeline: batches, repeatable shuffling and mixup."""
import numpy as np
import pytest

from agegender.data.datasets import make_dataset

N, K = 10, 10


def _data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (N, 4, 4, 3), dtype=np.uint8)
    # one-hot age targets on distinct classes, so each blended row shows its own mixing weight
    y = {"age": np.eye(K, dtype=np.float32), "gender": (np.arange(N) % 2).reshape(-1, 1).astype(np.float32)}
    return x, y


def _epochs(ds, n_epochs=2):
    return [[tuple(np.asarray(t) if not isinstance(t, dict) else {k: np.asarray(v) for k, v in t.items()}
                   for t in batch) for batch in ds] for _ in range(n_epochs)]


def test_without_mixup_batches_are_the_stored_faces_and_labels():
    x, y = _data()
    batches = _epochs(make_dataset(x, y, batch_size=4), 1)[0]
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert batches[0][0].dtype == np.uint8
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1]["age"] for b in batches]), y["age"])


def test_mixup_blends_faces_labels_and_weights_with_one_weight_per_face():
    x, y = _data()
    w = {"age": np.arange(1, N + 1, dtype=np.float32), "gender": np.ones(N, dtype=np.float32)}
    xb, yb, wb = next(iter(make_dataset(x, y, batch_size=N, sample_weight=w, mixup_alpha=0.4)))
    xb, age, gender, wage = (np.asarray(a) for a in (xb, yb["age"], yb["gender"], wb["age"]))
    assert xb.dtype == np.float32
    lam = age[np.arange(N), np.arange(N)]  # face i's share of its own one-hot class
    assert ((lam >= 0) & (lam <= 1)).all() and not np.allclose(lam, 1.0), "some faces must blend"
    partner = np.arange(N)[::-1]  # each face is blended with the batch in reverse order
    for i in range(N):
        if partner[i] == i:
            continue
        a = lam[i]
        np.testing.assert_allclose(age[i, partner[i]], 1 - a, atol=1e-6)
        np.testing.assert_allclose(xb[i], a * x[i] + (1 - a) * x[partner[i]], atol=1e-3)
        np.testing.assert_allclose(gender[i, 0], a * y["gender"][i, 0] + (1 - a) * y["gender"][partner[i], 0],
                                   atol=1e-6)
        np.testing.assert_allclose(wage[i], a * w["age"][i] + (1 - a) * w["age"][partner[i]], atol=1e-5)
    np.testing.assert_allclose(age.sum(axis=1), 1.0, atol=1e-6)  # still distributions


def test_mixup_repeats_run_to_run_and_changes_epoch_to_epoch():
    x, y = _data()

    def ages_by_epoch(seed):
        # no shuffling: only mixup's own randomness can change a batch
        ds = make_dataset(x, y, batch_size=5, seed=seed, mixup_alpha=0.2)
        return [np.concatenate([b[1]["age"] for b in epoch]) for epoch in _epochs(ds)]

    first, again, other = ages_by_epoch(7), ages_by_epoch(7), ages_by_epoch(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], first[1])
    assert not np.allclose(first[0], other[0])


def test_mixup_without_targets_or_with_negative_alpha_is_refused():
    x, y = _data()
    with pytest.raises(ValueError, match="mixup"):
        make_dataset(x, None, batch_size=4, mixup_alpha=0.2)
    with pytest.raises(ValueError, match="alpha >= 0"):
        make_dataset(x, y, batch_size=4, mixup_alpha=-0.1)
