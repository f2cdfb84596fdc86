"""Prediction on photos: several faces per photo cut like UTKFace chips, the detectors, and what a
saved model says it is."""
import io

import numpy as np
import pytest
from PIL import Image

from agegender.faces.alignment import chip_box
from agegender.faces.detector import Box, DetectorUnavailable
from agegender.faces.haar import HaarDetector
from agegender.prediction import predictor as P
from agegender.prediction.cli import console as predict_main
from predicting import assert_distinct, face_image, write_csv


# --- faces: several per photo, cut like UTKFace chips --------------------------------------------

def _group_photo(boxes, size=(640, 360), seed=0):
    """A photo with a synthetic face pasted exactly where the crop for each box will be cut."""
    rng = np.random.default_rng(seed)
    canvas = Image.fromarray(rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8))
    chips = []
    for i, box in enumerate(boxes):
        left, top, right, bottom = chip_box(box)
        chip = face_image(i, size=right - left, age=5 + 30 * i)
        canvas.paste(chip, (left, top))
        chips.append(chip)
    return canvas, chips


def test_several_faces_give_several_records_with_the_right_crops(model_dir):
    boxes = [Box(420, 60, 150, 150), Box(40, 100, 100, 100), Box(250, 150, 60, 60)]
    photo, chips = _group_photo(boxes)
    calls = []

    def detector(img):
        calls.append(img.size)
        return sorted(boxes, key=lambda b: b.x)  # a real detector reports left to right too

    pred = P.Predictor(model_dir / "model.keras", detector=detector, batch_size=2,
                       chunk=2, tta=False)
    records = pred.predict([photo, photo.rotate(0)])
    assert calls == [(640, 360), (640, 360)]
    assert [r["face"] for r in records] == [0, 1, 2, 0, 1, 2]
    assert [r["box"] for r in records[:3]] == [b.as_list() for b in sorted(boxes, key=lambda b: b.x)]
    # each record holds the prediction for its own face: the same as predicting that chip alone
    alone = [pred.predict([chip], detect=False)[0] for chip in chips]  # one call each: no mix-up
    order = [1, 2, 0]  # chips in box order given, records left to right
    for rec, k in zip(records[:3], order):
        assert rec["age"] == pytest.approx(alone[k]["age"], abs=0.11)
        assert rec["gender_probability"] == pytest.approx(alone[k]["gender_probability"], abs=2e-4)
    assert_distinct(alone)


def test_no_face_found_is_a_per_file_error(model_dir):
    pred = P.Predictor(model_dir / "model.keras", detector=lambda img: [], tta=False)
    (rec,) = pred.predict([face_image(0)])
    assert "no face found" in rec["error"] and "--no-detect" in rec["error"]


def test_chip_box_matches_the_measured_utkface_margins():
    left, top, right, bottom = chip_box(Box(100, 100, 104, 104))
    assert right - left == bottom - top == 100  # chip side = box side / 1.04
    assert left == 102 and top == 110  # centred across, 0.083 chip sides below the box centre


def test_missing_opencv_cascade_says_what_to_do(monkeypatch):
    import cv2

    monkeypatch.delattr(cv2, "CascadeClassifier", raising=False)
    with pytest.raises(DetectorUnavailable, match="--no-detect"):
        HaarDetector()


def _haar_or_skip():
    try:
        return HaarDetector()
    except DetectorUnavailable as exc:
        pytest.skip(f"real detector not testable with this OpenCV: {exc}")


def test_real_opencv_detector_finds_every_face_in_a_composite(model_dir, portrait):
    detector = _haar_or_skip()
    rng = np.random.default_rng(0)
    canvas = Image.fromarray(rng.integers(0, 255, (700, 1600, 3), dtype=np.uint8))
    placed = [(0, 50, 1.0), (560, 150, 0.6), (1000, 0, 1.1)]  # left, top, scale
    for left, top, scale in placed:
        canvas.paste(portrait.resize((round(512 * scale), round(600 * scale))), (left, top))
    assert detector(Image.fromarray(rng.integers(0, 255, (700, 1600, 3), dtype=np.uint8))) == []

    pred = P.Predictor(model_dir / "model.keras", detector=detector, tta=False)
    records = pred.predict([canvas])
    assert [r["face"] for r in records] == [0, 1, 2] and not any(r["error"] for r in records)
    single = detector(portrait)[0].box  # where the face is in the portrait itself
    for rec, (left, top, scale) in zip(records, placed):
        x, y, w, h = rec["box"]
        assert abs(x - (left + single.x * scale)) < 0.15 * w
        assert abs(y - (top + single.y * scale)) < 0.15 * h
        assert abs(w - single.w * scale) < 0.2 * w


# --- what a saved model is ---------------------------------------------------------------------

def test_the_model_file_says_what_it_is_and_an_old_one_is_refused(model_dir, tmp_path, capsys):
    import shutil
    import zipfile

    from agegender.serving.saved import ModelFileError, load_model

    pred = P.Predictor(model_dir / "model.keras")  # no params file anywhere: the file says it all
    assert pred.info.family == "compact" and pred.profile.name == "rgb72"
    assert pred.info.age_output.kind == "distribution" and pred.info.precision == "float32"
    old = tmp_path / "old.keras"  # as saved before the model carried its information
    with zipfile.ZipFile(model_dir / "model.keras") as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            if item.filename != "agegender.json":
                dst.writestr(item, src.read(item.filename))
    with pytest.raises(ModelFileError, match="from elsewhere, or .*older version .*retrain"):
        load_model(old)
    assert predict_main(["x.jpg", "--model", str(old), "--no-detect"]) == 2
    err = capsys.readouterr().err
    assert "retrain" in err and "Traceback" not in err
    shutil.copy(model_dir / "model.keras", tmp_path / "copy.keras")
    assert load_model(tmp_path / "copy.keras")[1] == pred.info


def test_default_detector_records_carry_confidence_and_landmarks(model_dir, portrait):
    import csv

    canvas = Image.new("RGB", (1280, 720), (30, 30, 30))
    canvas.paste(portrait.resize((256, 300)), (100, 200))
    canvas.paste(portrait.resize((384, 450)).rotate(-20, expand=True), (700, 100))
    records = P.Predictor(model_dir / "model.keras", tta=False).predict([canvas])
    assert [r["face"] for r in records] == [0, 1] and not any(r["error"] for r in records)
    assert records[0]["box"][0] < records[1]["box"][0]
    for rec in records:
        assert 0.9 < rec["confidence"] <= 1
        assert list(rec["landmarks"]) == ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]
        x, y, w, h = rec["box"]
        assert all(x <= px <= x + w and y <= py <= y + h for px, py in rec["landmarks"].values())
    out = io.StringIO()
    write_csv(records, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert float(rows[1]["right_eye_x"]) == records[1]["landmarks"]["right_eye"][0]
    assert float(rows[0]["confidence"]) == records[0]["confidence"]


