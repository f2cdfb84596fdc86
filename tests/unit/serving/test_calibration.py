"""Gender confidence and age intervals that mean what they say: calibration error, temperature
scaling, the age interval from the model's distribution, and the temperature travelling with the
saved model. Synthetic numbers only; no training."""
import numpy as np
import pandas as pd
import pytest

from agegender.data.arrays import hold_out
from agegender.data.bins import CUSTOM12
from agegender.evaluation.metrics import expected_calibration_error, interval_metrics, reliability
from agegender.evaluation.scoring import predictions_table, score
from agegender.model.families import get_family
from agegender.model.targets import AGES, AgeOutput
from agegender.serving import calibration as C
from agegender.serving.inference import decode_outputs


def _calibrated(n: int, seed: int):
    """Faces whose P(female) is exactly how often they are female: labels drawn from p itself."""
    rng = np.random.default_rng(seed)
    p = rng.random(n)
    return (rng.random(n) < p).astype(int), p


def test_ece_is_near_zero_for_a_calibrated_output_and_large_for_an_over_confident_one():
    y, p = _calibrated(200_000, 0)
    assert expected_calibration_error(y, p) < 0.005
    # the same faces, each pushed to 99 % confidence in its side of 0.5: right only as often as before
    over = np.where(p >= 0.5, 0.99, 0.01)
    right = ((p >= 0.5).astype(int) == y).mean()  # about 0.75 for uniform p
    assert expected_calibration_error(y, over) == pytest.approx(0.99 - right, abs=1e-9)
    assert expected_calibration_error(y, over) > 0.2


def test_reliability_bins_cover_half_to_one_and_count_every_face():
    y = np.array([1, 0, 1, 0, 1])
    p = np.array([0.5, 0.3, 1.0, 0.05, 0.74])  # confidences 0.5, 0.7, 1.0, 0.95, 0.74
    table = reliability(y, p, n_bins=5)  # bins of width 0.1 from 0.5
    assert table["n"].tolist() == [1, 0, 2, 0, 2] and table["n"].sum() == len(y)
    assert table["accuracy"][2] == 1.0 and table["confidence"][2] == pytest.approx(0.72)
    assert np.isnan(table["accuracy"][1])  # empty bin


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_fitting_recovers_a_known_temperature(true_t):
    """Labels drawn from sigmoid(z); the network reports z * T: the fit must find T back."""
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, 50_000)
    y = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(int)
    found = C.fit_temperature(z * true_t, y)
    assert found == pytest.approx(true_t, rel=0.05)
    fixed = C.apply_temperature(1 / (1 + np.exp(-z * true_t)), found)
    assert expected_calibration_error(y, fixed) < 0.01


def test_a_temperature_never_moves_a_probability_across_one_half():
    p = np.array([0.01, 0.3, 0.5, 0.51, 0.99])
    for t in (0.3, 3.0):
        q = C.apply_temperature(p, t)
        assert ((q >= 0.5) == (p >= 0.5)).all()
    np.testing.assert_array_equal(C.apply_temperature(p, None), p)


def test_hold_out_takes_the_share_from_each_split_and_keeps_the_rest():
    images = np.arange(100 * 2 * 2 * 1, dtype=np.uint8).reshape(100, 2, 2, 1)
    labels = np.stack([np.arange(100), np.arange(100) % 2, np.zeros(100)], axis=1).astype(np.int16)
    train, val = (images[:80], labels[:80]), (images[80:], labels[80:])
    rest_train, rest_val, held = hold_out(train, val, 0.25, seed=0)
    assert (len(rest_train[1]), len(rest_val[1]), len(held[1])) == (60, 15, 25)
    ages = np.concatenate([rest_train[1][:, 0], rest_val[1][:, 0], held[1][:, 0]])
    assert sorted(ages.tolist()) == list(range(100))  # every face once
    assert (held[0][:, 0, 0, 0] == images[held[1][:, 0], 0, 0, 0]).all()  # images follow their labels


def _peaked(centre: float, sigma: float) -> np.ndarray:
    d = np.exp(-0.5 * ((AGES - centre) / sigma) ** 2)
    return d / d.sum()


def test_the_age_interval_holds_the_mode_and_widens_with_a_flatter_distribution():
    out = get_family("compact").age_output  # a softmax over ages 0..116
    sharp, flat = _peaked(34, 3), _peaked(34, 9)
    low, high = out.interval(np.stack([sharp, flat]))
    assert (low < 34).all() and (high > 34).all()
    assert high[1] - low[1] > 2 * (high[0] - low[0])
    # a Gaussian's 10th-90th percentile is +-1.28 sigma
    assert low[0] == pytest.approx(34 - 1.2816 * 3, abs=0.15) and high[0] == pytest.approx(34 + 1.2816 * 3, abs=0.15)


def test_bins_give_an_interval_inside_the_likely_bins_and_regression_none():
    out = AgeOutput("bins", CUSTOM12, "softmax")
    p = np.zeros((1, CUSTOM12.n_bins))
    p[0, 5] = 1.0  # all mass on bin 27-32
    low, high = out.interval(p)
    assert 27 <= low[0] < high[0] <= 33
    assert AgeOutput("regression").interval(np.ones((1, 1))) is None


def test_evaluate_reports_interval_coverage_and_ece_before_and_after_the_temperature():
    out = get_family("compact").age_output
    ages = np.array([20, 30, 40, 50])
    outputs = {"age": np.stack([_peaked(a, 3) for a in (20, 30, 60, 50)]),
               "gender": np.array([0.9, 0.2, 0.95, 0.1])}
    decoded = decode_outputs(outputs, out, gender_temperature=2.0)
    assert decoded["gender_prob"][0] < 0.9 and decoded["gender_prob_raw"][0] == pytest.approx(0.9)
    labels = pd.DataFrame({"file": list("abcd"), "age": ages, "gender": [1, 0, 0, 0], "race": 0})
    df = predictions_table(labels, decoded, out)
    assert {"pred_age_low", "pred_age_high", "gender_prob_raw"} <= set(df.columns)
    metrics = score(df, out)
    assert metrics["age"]["interval_coverage"] == 0.75  # the third face's true age is outside
    assert metrics["gender"]["ece"] != metrics["gender"]["ece_uncalibrated"]
    assert interval_metrics([1], [np.nan], [np.nan]) == {"coverage": None, "width": None}


def test_the_temperature_travels_with_the_saved_model_and_an_older_file_has_none(tmp_path):
    import keras

    from agegender.serving.saved import ModelInfo, read_info, save_model

    inputs = keras.Input((4,))
    model = keras.Model(inputs, {"age": keras.layers.Dense(1, name="age")(inputs),
                                 "gender": keras.layers.Dense(1, name="gender")(inputs)})
    cal = C.GenderCalibration(1.7, 2133, "val")
    save_model(model, tmp_path / "m.keras", ModelInfo.for_family("compact", "float32", cal))
    info = read_info(tmp_path / "m.keras")
    assert info.gender_calibration == cal and info.gender_temperature == 1.7
    old = ModelInfo.for_family("compact", "float32").to_json()
    del old["gender_calibration"]  # as saved before the temperature existed
    assert ModelInfo.from_json(old).gender_temperature is None


def _synthetic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 72, 72, 3), dtype=np.uint8)
    labels = np.stack([rng.integers(1, 90, n), rng.integers(0, 2, n), np.zeros(n)], 1).astype(np.int16)
    return images, labels


def test_a_model_gets_a_temperature_from_enough_held_out_faces_and_none_from_too_few():
    import keras

    from agegender.model.build import build_model
    from agegender.params import Recipe
    from agegender.serving.inference import fit_gender_calibration

    keras.utils.set_random_seed(0)
    model = build_model("compact", Recipe(), seed=0, precision="float32")
    images, labels = _synthetic(C.MIN_FACES, 0)
    cal = fit_gender_calibration(model, images, labels, "val", batch_size=64)
    assert cal.faces == C.MIN_FACES and cal.held_out == "val"
    assert C.BOUNDS[0] <= cal.temperature <= C.BOUNDS[1]
    assert fit_gender_calibration(model, images[1:], labels[1:], "val") is None


@pytest.mark.slow
def test_a_final_fit_with_a_calibration_holdout_saves_its_temperature(tmp_path):
    """The train stage holds the share out of the final fit and saves the temperature fitted on it."""
    import yaml

    from agegender.serving.saved import read_info
    from agegender.training.summary import TrainSummary
    from stages import train as train_stage

    data = tmp_path / "arrays"
    data.mkdir()
    for split, n, seed in (("train", 200, 0), ("val", 40, 1)):
        images, labels = _synthetic(n, seed)
        np.save(data / f"{split}_images.npy", images)
        np.save(data / f"{split}_labels.npy", labels)
    params = {"data": {"source": "x"}, "model": "compact",
              "models": {"compact": {"epochs": 1, "batch_size": 32, "final_fit": True, "precision": "float32",
                                     "calibration_holdout": 0.45}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "out"
    assert train_stage.main(["--params", str(tmp_path / "params.yaml"), "--data-dir", str(data),
                             "--model-out", str(out / "model.keras"), "--live-dir", str(out / "live"),
                             "--summary-out", str(out / "summary.json"), "-q"]) == 0
    cal = read_info(out / "model.keras").gender_calibration
    assert cal.held_out == "holdout" and cal.faces == 90 + 18
    assert TrainSummary.read(out / "summary.json").train_images == 240 - cal.faces
