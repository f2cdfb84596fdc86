"""A model saved by an earlier version of the project still loads and predicts the same.

``tests/helpers/fixtures/saved_compact.keras`` was made at commit 53e927c by
``tests/helpers/fixtures/make_saved_model.py`` (a tiny compact-family network, trained two epochs on
synthetic faces, saved with :func:`agegender.serving.saved.save_model`), with its raw outputs and
decoded predictions for six fixed faces in ``saved_compact_expected.npz``.
"""

import numpy as np

from agegender.serving.inference import decode_outputs, predict_outputs
from agegender.serving.saved import load_model, read_info
from locations import FIXTURES

MODEL = FIXTURES / "saved_compact.keras"


def test_model_saved_before_the_refactoring_loads_and_predicts_the_same():
    info = read_info(MODEL)
    assert (info.family, info.precision, info.age_output.kind) == ("compact", "float32", "distribution")
    assert info.gender_calibration is None  # saved before temperatures: predicts as the network says
    model, info = load_model(MODEL)
    with np.load(FIXTURES / "saved_compact_expected.npz") as expected:
        images = expected["images"]
        assert images.shape == (6, 72, 72, 3) and images.dtype == np.uint8
        raw = predict_outputs(model, images, batch_size=4)
        np.testing.assert_allclose(raw["age"], expected["age"], atol=1e-5)
        np.testing.assert_allclose(raw["gender"], expected["gender"], atol=1e-5)
        decoded = decode_outputs(raw, info.age_output)
        np.testing.assert_allclose(decoded["pred_age"], expected["pred_age"], atol=1e-4)
        np.testing.assert_allclose(decoded["gender_prob"], expected["gender_prob"], atol=1e-5)
        # the fixture's faces get different outputs, so a model that ignored its input would fail
        assert np.ptp(expected["age"], axis=0).max() > 1e-4
