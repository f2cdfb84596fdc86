"""The TFLite export (stages/export.py, agegender/serving/export.py) predicts what the Keras model
predicts: on 32 faces, ages within 0.1 years and P(female) within 0.005, decoded by the project's
own decoder; a mixed-bfloat16 model is exported in float32.

Models: tests/helpers/fixtures/saved_compact.keras (the compact family, trained two epochs on synthetic
faces, default augmentation with the custom RandomFraming layer) and a tiny compact network built
by the project's builder in mixed bfloat16, its heads sharpened so faces get distinct outputs.
"""
import json

import numpy as np
import pytest

from agegender.serving.inference import predict
from agegender.serving.saved import load_model
from locations import FIXTURES
from synthetic import face

MODEL = FIXTURES / "saved_compact.keras"
AGE_YEARS, GENDER_P = 0.1, 0.005  # the parity bounds


def _faces(n=32, size=72, seed=0):
    """``n`` synthetic faces at the model's profile size, uint8 (n, size, size, 3)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    return np.stack([np.asarray(face(int(rng.integers(1, 90)), i % 2, rng).resize((size, size), Image.BILINEAR))
                     for i in range(n)])


def _assert_parity(keras_pred, lite_pred):
    assert np.abs(keras_pred["pred_age"] - lite_pred["pred_age"]).max() < AGE_YEARS
    assert np.abs(keras_pred["gender_prob"] - lite_pred["gender_prob"]).max() < GENDER_P


def _sharpen(model):
    """Heads x30: a tiny model gives nearly one output for every face; parity on distinct ones."""
    for head in ("age", "gender"):
        kernel, bias = model.get_layer(head).get_weights()
        model.get_layer(head).set_weights([kernel * 30, bias])
    return model


def test_the_export_stage_writes_a_tflite_model_that_predicts_like_the_keras_one(tmp_path, capsys):
    from dataclasses import replace

    from agegender.serving.calibration import GenderCalibration
    from agegender.serving.export import TFLiteModel
    from agegender.serving.saved import save_model
    from stages.export import main

    fixture, fixture_info = load_model(MODEL)
    # a fitted gender temperature travels with the export and is applied as the Keras path does
    fixture_info = replace(fixture_info, gender_calibration=GenderCalibration(2.0, 500, "val"))
    save_model(_sharpen(fixture), tmp_path / "model.keras", fixture_info)
    out = tmp_path / "deploy" / "model.tflite"
    assert main(["--model", str(tmp_path / "model.keras"), "--out", str(out)]) == 0
    assert "export:" in capsys.readouterr().out
    info = json.loads((tmp_path / "deploy" / "model.tflite.json").read_text())
    assert (info["family"], info["precision"], info["profile"]["size"]) == ("compact", "float32", 72)

    model, model_info = load_model(tmp_path / "model.keras")
    lite = TFLiteModel(out)
    assert lite.info == model_info
    images = _faces()
    for tta in (False, True):  # batches of 5: the interpreter resized for a short last batch too
        expected = predict(model, model_info.age_output, images, batch_size=8, tta_flip=tta,
                           gender_temperature=model_info.gender_temperature)
        got = lite.predict(images, batch_size=5, tta_flip=tta)
        assert not np.allclose(got["gender_prob"], got["gender_prob_raw"])  # T applied
        _assert_parity(expected, got)
    # the faces get different outputs, so parity means something
    assert np.ptp(expected["pred_age"]) > 1.0 and np.ptp(expected["gender_prob"]) > 0.05


def test_the_export_stage_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    from agegender import commands
    from stages.export import main

    assert commands.run("export", main, ["--model", str(tmp_path / "none.keras"), "--out",
                                    str(tmp_path / "m.tflite")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "model file not found" in err[0]
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.slow  # a second conversion (~10 s)
@pytest.mark.bf16
def test_a_mixed_bfloat16_model_is_exported_in_float32(tmp_path):
    import keras
    import tensorflow as tf

    from agegender.model.build import build_model
    from agegender.params import Recipe
    from agegender.serving.export import TFLiteModel, to_tflite
    from agegender.serving.saved import ModelInfo, as_float32

    keras.utils.set_random_seed(0)
    recipe = Recipe.model_validate({"architecture": {"stem_filters": 4, "stage_filters": [4, 8, 8, 8]}})
    model = build_model("compact", recipe, seed=0, precision="mixed_bfloat16")
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
    _sharpen(model)
    path = tmp_path / "m.tflite"
    path.write_bytes(to_tflite(model))
    kinds = {d["dtype"] for d in tf.lite.Interpreter(model_path=str(path)).get_tensor_details()}
    assert np.float32 in kinds and not kinds - {np.float32, np.int32, np.uint8}, kinds  # no 16-bit

    info = ModelInfo.for_family("compact", "float32")
    images = _faces()
    expected = predict(as_float32(model), info.age_output, images, batch_size=32)
    _assert_parity(expected, TFLiteModel(path, info).predict(images))
    assert np.ptp(expected["pred_age"]) > 1.0 and np.ptp(expected["gender_prob"]) > 0.05

