"""Prediction on new pictures: inputs of every kind and size, per-file errors, and the pixels that
reach the model."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from agegender.data.images import to_array
from agegender.faces.detector import Box
from agegender.prediction import output as O
from agegender.prediction import predictor as P
from agegender.prediction.cli import console as predict_main
from agegender.prediction.inputs import Item
from predicting import assert_distinct, face_image, ok, save_image


# --- bad inputs ---------------------------------------------------------------------------------

@pytest.fixture
def mixed_folder(tmp_path):
    """Two good crops and every kind of bad file, the bad ones between the good ones."""
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    save_image(face_image(0), d / "a_good.jpg", quality=95)
    good = (d / "a_good.jpg").read_bytes()
    (d / "b_empty.jpg").write_bytes(b"")
    (d / "c_truncated.jpg").write_bytes(good[: len(good) // 2])
    (d / "d_text.png").write_text("this is not a picture\n")
    save_image(face_image(1), d / "sub" / "e_good.png")
    (d / "notes.txt").write_text("not looked at: folders are searched for image suffixes only")
    return d


def test_bad_files_get_their_own_error_and_the_rest_is_predicted(predictor, mixed_folder):
    records = predictor.predict([mixed_folder, mixed_folder / "missing.jpg"], detect=False)
    by_file = {r["file"].replace(str(mixed_folder) + "/", ""): r for r in records}
    assert list(by_file) == ["a_good.jpg", "b_empty.jpg", "c_truncated.jpg", "d_text.png",
                             "sub/e_good.png", "missing.jpg"]
    assert "empty file (0 bytes)" in by_file["b_empty.jpg"]["error"]
    assert "truncated" in by_file["c_truncated.jpg"]["error"]
    assert "not an image" in by_file["d_text.png"]["error"]
    assert "no such file" in by_file["missing.jpg"]["error"]
    for name in ("a_good.jpg", "sub/e_good.png"):
        rec = by_file[name]
        assert rec["error"] is None and rec["box"] == [0, 0, 120, 120] and rec["face"] == 0
        assert 0 <= rec["age"] <= 116 and rec["gender"] in ("female", "male")
        assert 0.5 <= rec["gender_probability"] <= 1
    for name in ("b_empty.jpg", "c_truncated.jpg", "d_text.png", "missing.jpg"):
        assert by_file[name]["age"] is None and by_file[name]["box"] is None


def test_cli_reports_failures_on_stderr_and_in_exit_status(model_dir, mixed_folder, tmp_path, capsys):
    out = tmp_path / "out.csv"
    code = predict_main([str(mixed_folder), "--model", str(model_dir / "model.keras"), "--no-detect",
                   "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    for name in ("b_empty.jpg", "c_truncated.jpg", "d_text.png"):
        assert f"{mixed_folder / name}: " in err
    assert "5 files, 2 faces, 3 failed" in err
    rows = out.read_text().splitlines()
    assert rows[0] == ",".join(O.CSV_FIELDS) and len(rows) == 6

    code = predict_main([str(mixed_folder / "a_good.jpg"), "--model", str(model_dir / "model.keras"),
                   "--no-detect", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0
    (rec,) = json.loads(captured.out)
    assert rec["box"] == [0, 0, 120, 120] and rec["error"] is None and rec["bin"] is None


def test_empty_folder_is_an_error_not_silence(predictor, tmp_path):
    (rec,) = predictor.predict([tmp_path], detect=False)
    assert "no image files" in rec["error"]


def test_cli_setup_errors_exit_2(model_dir, tmp_path, capsys, monkeypatch):
    assert predict_main(["x.jpg", "--model", str(tmp_path / "none.keras"), "--no-detect"]) == 2
    assert "model file not found" in capsys.readouterr().err
    import cv2

    monkeypatch.delattr(cv2, "CascadeClassifier", raising=False)  # as in OpenCV 5
    assert predict_main(["x.jpg", "--model", str(model_dir / "model.keras"), "--detector", "haar"]) == 2
    assert "--no-detect" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "mtcnn", None)  # not installed
    assert predict_main(["x.jpg", "--model", str(model_dir / "model.keras")]) == 2
    err = capsys.readouterr().err
    assert "mtcnn" in err and "--no-detect" in err and "Traceback" not in err


# --- every size, format and mode ----------------------------------------------------------------

def _reference(img, profile):
    return to_array(img.convert("RGB"), profile)


@pytest.mark.parametrize("fmt, mode, kw", [
    ("JPEG", "RGB", {"quality": 100}), ("JPEG", "L", {"quality": 100}),
    ("PNG", "RGB", {}), ("PNG", "L", {}), ("PNG", "P", {}),
    ("WEBP", "RGB", {"lossless": True}), ("WEBP", "L", {"lossless": True}),
    ("GIF", "P", {}), ("BMP", "RGB", {}), ("TIFF", "RGB", {})])
def test_formats_and_modes_reach_the_model_as_the_same_pixels(predictor, fmt, mode, kw):
    img = face_image(2, size=90).convert(mode)
    data = io.BytesIO()
    img.save(data, fmt, **kw)
    prepared = P.prepare(Item("x", data.getvalue()), predictor.profile, None)
    assert prepared.error is None
    (arr,) = prepared.arrays
    assert arr.shape == predictor.profile.shape and arr.dtype == np.uint8
    tolerance = 3 if fmt == "JPEG" else 0.5  # mean absolute difference, grey levels
    assert np.abs(arr.astype(float) - _reference(img, predictor.profile)).mean() <= tolerance


def test_transparency_is_flattened_onto_white(predictor):
    rgba = np.zeros((40, 40, 4), np.uint8)  # fully transparent black
    rgba[10:30, 10:30] = (200, 0, 0, 255)  # an opaque red square
    data = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(data, "PNG")
    (arr,) = P.prepare(Item("x", data.getvalue()), predictor.profile, None).arrays
    assert (arr[0, 0] == 255).all() and tuple(arr[32, 32]) == (200, 0, 0)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(predictor):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    data = io.BytesIO()
    Image.fromarray(ramp).save(data, "PNG")
    (arr,) = P.prepare(Item("x", data.getvalue()), predictor.profile, None).arrays
    assert arr[0, 0, 0] < 10 and arr[0, -1, 0] > 245 and 100 < arr[0, 32, 0] < 155


def test_exif_orientation_is_honoured(predictor):
    img = Image.new("RGB", (80, 40), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 40, 40))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # stored as shot; display rotated 90 degrees clockwise
    data = io.BytesIO()
    img.save(data, "JPEG", quality=100, exif=exif)
    prepared = P.prepare(Item("x", data.getvalue()), predictor.profile, None)
    assert [f.box for f in prepared.faces] == [Box(0, 0, 40, 80)]  # portrait after rotation
    (arr,) = prepared.arrays
    upright = img.transpose(Image.Transpose.ROTATE_270)  # what a viewer shows: white on top
    assert np.abs(arr.astype(float) - _reference(upright, predictor.profile)).mean() < 3
    half = len(arr) // 2
    assert arr[:half].mean() > 200 and arr[half:].mean() < 50


@pytest.mark.parametrize("size", [(1, 1), (3, 700), (2500, 1800)])
def test_any_size(predictor, size):
    img = Image.new("RGB", size, (90, 120, 150))
    (rec,) = predictor.predict([img], detect=False)
    assert rec["error"] is None and rec["box"] == [0, 0, *size]


def test_in_memory_inputs_and_batching_do_not_change_results(model_dir):
    faces = [face_image(i, size=60 + 20 * i) for i in range(5)]
    inputs = [faces[0], np.asarray(faces[1]), b"junk", _encode(faces[2]), faces[3].convert("L"), faces[4]]
    runs = [P.Predictor(model_dir / "model.keras", batch_size=b, chunk=c, tta=False)
            .predict(inputs, detect=False) for b, c in ((1, 1), (2, 3), (64, 256))]
    assert [r["file"] for r in runs[0]] == ["<image 0>", "<array 1>", "<bytes 2>", "<bytes 3>",
                                            "<image 4>", "<image 5>"]
    assert runs[0][2]["error"] and all(r["error"] is None for i, r in enumerate(runs[0]) if i != 2)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert a["file"] == b["file"] and a["error"] == b["error"]
            assert a["age"] == pytest.approx(b["age"], abs=0.11)
            assert a["gender_probability"] == pytest.approx(b["gender_probability"], abs=2e-4)
    assert_distinct(ok(runs[0]))


def _encode(img, fmt="PNG"):
    data = io.BytesIO()
    img.save(data, fmt)
    return data.getvalue()


