"""Fixtures of the predictor tests (tests/unit/prediction/test_predict_*.py): the model is an
untrained ``compact`` network saved to a temporary folder (tests/helpers/predicting.py): these
tests check the plumbing (which pixels reach the network, which record each output lands in), not
accuracy."""
import pytest

from predicting import sharpened_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return sharpened_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def predictor(model_dir):
    from agegender.prediction import predictor as P

    return P.Predictor(model_dir / "model.keras", batch_size=4, workers=2, tta=False)
