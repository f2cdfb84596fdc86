"""benchmarks/quality/age_calibration.py's maps and its cross-fitting (no model, no real data)."""
import numpy as np
import pytest

from benchmarks.quality import age_calibration as ac


class _Seen:
    """A map that remembers the predicted ages it was fitted on, and maps each age to 1.0 when
    it was one of them, else 0.0."""

    def fit(self, predicted, true):
        self.seen = set(np.asarray(predicted).tolist())
        return self

    def predict(self, predicted):
        return np.array([float(p in self.seen) for p in predicted])


def test_cross_fitting_maps_every_face_by_a_fit_that_never_saw_it():
    predicted = np.arange(40, dtype=float)  # every face's age its own: a fit on it would say so
    for folds in (2, 5):
        out = ac.cross_fit(_Seen, predicted, predicted.copy(), folds, seed=0)
        assert out.shape == (40,) and (out == 0).all()


def test_the_linear_map_undoes_a_shrinkage_towards_the_mean_and_stays_within_utkfaces_ages():
    rng = np.random.default_rng(0)
    true = rng.uniform(1, 90, 500)
    predicted = 35 + 0.7 * (true - 35)  # the old read younger, the young older
    linear = ac.Linear().fit(predicted, true)
    assert np.abs(linear.predict(predicted) - true).max() < 1e-6
    # its slope is above 1: the youngest readings would map below 0, the oldest past 116
    assert list(linear.predict(np.array([0.0, 200.0]))) == [0.0, ac.MAX_AGE]


def test_the_isotonic_map_stays_within_utkfaces_ages_and_is_monotone():
    predicted = np.array([1.0, 10, 20, 30, 40, 50])
    true = np.array([0.0, 12, 18, 35, 45, 200])  # one label past the oldest face
    m = ac.MAPS["isotonic"]().fit(predicted, true)
    out = m.predict(np.array([-5.0, 1, 25, 50, 90]))
    assert (np.diff(out) >= 0).all() and out.max() <= ac.MAX_AGE and out[0] == out[1]


def test_fewer_than_two_folds_is_refused_before_any_model_loads(capsys):
    with pytest.raises(SystemExit) as stop:
        ac.main(["--folds", "1", "--model", "no-such-model.keras"])
    assert stop.value.code == 2 and "--folds must be 2 or more" in capsys.readouterr().err
