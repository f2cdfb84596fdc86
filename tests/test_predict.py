"""Prediction on new pictures: inputs of every kind, per-file errors, face crops, model families.

The model is an untrained ``compact`` network saved to a temporary folder: these tests check the
plumbing (which pixels reach the network, which record each output lands in), not accuracy.
Untrained, it would give every face nearly the same outputs, so its two heads are sharpened (weights
x30): different faces then get clearly different (age, gender probability) pairs, far apart beyond
the tolerances used, and a record holding another face's prediction cannot go unseen.
"""
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender.data.images import to_array
from agegender.faces.alignment import chip_box
from agegender.faces.detector import Box, DetectorUnavailable
from agegender.faces.haar import HaarDetector
from agegender.model.build import build_model
from agegender.params import Recipe
from agegender.prediction import output as O
from agegender.prediction import predictor as P
from agegender.prediction.cli import console as predict_main
from agegender.prediction.inputs import Item
from agegender.serving.saved import ModelInfo, save_model
from synthetic import face

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)  # the same untrained weights every run
    model = build_model("compact", Recipe(), seed=0)
    for head in ("age", "gender"):
        kernel, bias = model.get_layer(head).get_weights()
        model.get_layer(head).set_weights([kernel * 30, bias])
    save_model(model, folder / "model.keras", ModelInfo.for_family("compact", "float32"))
    return folder


@pytest.fixture(scope="module")
def predictor(model_dir):
    return P.Predictor(model_dir / "model.keras", batch_size=4, workers=2, tta=False)


def _write_csv(records, out) -> None:
    """Records as the command line writes them (the streaming Writer), to a text stream."""
    writer = O.Writer(None, "csv", None, stream=out)
    writer.write(records)
    writer.close()


def _face(seed, size=120, age=None):
    rng = np.random.default_rng(seed)
    return face(age if age is not None else 10 + 15 * seed, seed % 2, rng, size=size)


def _save(img, path, **kw):
    img.save(path, **kw)
    return path


def _ok(records):
    return [r for r in records if not r["error"]]


# --- bad inputs ---------------------------------------------------------------------------------

@pytest.fixture
def mixed_folder(tmp_path):
    """Two good crops and every kind of bad file, the bad ones between the good ones."""
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    _save(_face(0), d / "a_good.jpg", quality=95)
    good = (d / "a_good.jpg").read_bytes()
    (d / "b_empty.jpg").write_bytes(b"")
    (d / "c_truncated.jpg").write_bytes(good[: len(good) // 2])
    (d / "d_text.png").write_text("this is not a picture\n")
    _save(_face(1), d / "sub" / "e_good.png")
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
    img = _face(2, size=90).convert(mode)
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
    faces = [_face(i, size=60 + 20 * i) for i in range(5)]
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
    _assert_distinct(_ok(runs[0]))


def _assert_distinct(records):
    """Faces must get clearly different outputs, or a mix-up of records would go unseen."""
    for i, a in enumerate(records):
        for b in records[i + 1:]:
            assert (abs(a["age"] - b["age"]) > 0.5
                    or abs(a["gender_probability"] - b["gender_probability"]) > 0.005), (a, b)


def _encode(img, fmt="PNG"):
    data = io.BytesIO()
    img.save(data, fmt)
    return data.getvalue()


# --- faces: several per photo, cut like UTKFace chips --------------------------------------------

def _group_photo(boxes, size=(640, 360), seed=0):
    """A photo with a synthetic face pasted exactly where the crop for each box will be cut."""
    rng = np.random.default_rng(seed)
    canvas = Image.fromarray(rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8))
    chips = []
    for i, box in enumerate(boxes):
        left, top, right, bottom = chip_box(box)
        chip = _face(i, size=right - left, age=5 + 30 * i)
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
    _assert_distinct(alone)


def test_no_face_found_is_a_per_file_error(model_dir):
    pred = P.Predictor(model_dir / "model.keras", detector=lambda img: [], tta=False)
    (rec,) = pred.predict([_face(0)])
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
    _write_csv(records, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert float(rows[1]["right_eye_x"]) == records[1]["landmarks"]["right_eye"][0]
    assert float(rows[0]["confidence"]) == records[0]["confidence"]


# --- nothing lost, nothing overwritten (issue 21) ------------------------------------------------

def _crops(folder, n, distinct=6):
    """``n`` face crops named 0000.jpg... (``distinct`` different pictures, repeated)."""
    folder.mkdir(parents=True, exist_ok=True)
    encoded = []
    for i in range(distinct):
        buf = io.BytesIO()
        _face(i, size=64).save(buf, "JPEG", quality=90)
        encoded.append(buf.getvalue())
    for i in range(n):
        (folder / f"{i:04d}.jpg").write_bytes(encoded[i % distinct])
    return folder


def _cli(model_dir, *args):
    return predict_main([*map(str, args), "--model", str(model_dir / "model.keras"), "--no-detect",
                         "--workers", "2"])


def _error_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("predict: error: "), err
    return err[0]


def test_an_output_that_is_an_input_or_a_folder_is_refused_before_predicting(model_dir, tmp_path,
                                                                             capsys, monkeypatch):
    d = _crops(tmp_path / "d", 2)
    photo = (d / "0000.jpg").read_bytes()
    monkeypatch.setattr(P.Predictor, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    link = tmp_path / "link.csv"
    link.symlink_to(d / "0001.jpg")
    hard = tmp_path / "hard.csv"
    os.link(d / "0000.jpg", hard)  # another path, the same file on disk
    for output, problem in [(d / "0000.jpg", "is one of the inputs"),  # via the folder
                            (link, "is one of the inputs"),  # a link to an input
                            (hard, "is one of the inputs"),  # a hard link to an input
                            (d, "is a folder"), (tmp_path, "is a folder"),
                            (d / "new.png", "named like an image"),
                            (d / "0001.jpg" / "x.csv", "cannot write there"),
                            ("/proc/predictions.csv", "cannot write there")]:
        assert _cli(model_dir, d, "--output", output) == 2, output
        assert problem in _error_line(capsys), output
    assert _cli(model_dir, d / "0000.jpg", "--output", d / "0000.jpg") == 2
    assert "is one of the inputs" in _error_line(capsys)
    assert (d / "0000.jpg").read_bytes() == photo and sorted(p.name for p in d.iterdir()) == [
        "0000.jpg", "0001.jpg"]


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--workers", "-1"),
                                           ("--max-file-mb", "0"), ("--detect-max-side", "-5"),
                                           ("--batch-size", "many")])
def test_bad_option_values_are_argparse_errors(option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        predict_main(["x.jpg", option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {option}" in err and "Traceback" not in err


def _foreign_models(model_dir, folder):
    """.keras files this project must refuse, each as it would reach a user."""
    import zipfile

    import keras

    from agegender.serving.saved import ModelInfo, save_model

    info = ModelInfo.for_family("compact", "float32")
    x = keras.Input((72, 72, 3))
    y = keras.layers.Lambda(lambda t: t * 2)(x)
    lam = keras.Model(x, {"age": keras.layers.Dense(1, name="age")(keras.layers.Flatten()(y)),
                          "gender": keras.layers.Dense(1, name="gender")(keras.layers.Flatten()(y))})
    save_model(lam, folder / "lambda.keras", info)
    with zipfile.ZipFile(model_dir / "model.keras") as src:
        entries = {n: src.read(n) for n in src.namelist()}
    config = json.loads(entries["config.json"])
    config["config"]["layers"][1].update(module="os", class_name="system", registered_name="os>system")
    for name, changed in [("injected.keras", {"config.json": json.dumps(config).encode()}),
                          ("no_config.keras", {"config.json": None})]:
        with zipfile.ZipFile(folder / name, "w") as dst:
            for entry, data in {**entries, **changed}.items():
                if data is not None:
                    dst.writestr(entry, data)
    (folder / "random.keras").write_bytes(np.random.default_rng(0).bytes(5000))
    return ["lambda.keras", "injected.keras", "no_config.keras", "random.keras"]


def test_every_foreign_or_corrupt_model_file_is_one_line_and_exit_2(model_dir, tmp_path, capsys):
    crop = _crops(tmp_path / "in", 1) / "0000.jpg"
    for name in _foreign_models(model_dir, tmp_path):
        code = predict_main([str(crop), "--model", str(tmp_path / name), "--no-detect"])
        assert code == 2, name
        line = _error_line(capsys)
        assert name in line and len(line) < 400, line


def test_every_format_names_its_model_and_resumes_after_a_torn_line(model_dir, tmp_path, capsys):
    import csv
    import hashlib

    d = _crops(tmp_path / "d", 7)
    sha = hashlib.sha256((model_dir / "model.keras").read_bytes()).hexdigest()
    full = {}
    for fmt in ("csv", "jsonl", "json"):
        out = tmp_path / f"all.{fmt}"
        assert _cli(model_dir, d, "--format", fmt, "--output", out) == 0
        text = out.read_text()
        recs = (list(csv.DictReader(io.StringIO(text))) if fmt == "csv" else json.loads(text)
                if fmt == "json" else [json.loads(line) for line in text.splitlines()])
        assert [r["file"] for r in recs] == [str(d / f"{i:04d}.jpg") for i in range(7)]
        assert {(r["model_family"], r["model_sha256"]) for r in recs} == {("compact", sha)}
        full[fmt] = text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the JSON temp is gone
    # the JSON list, written through a temporary file, has the mode a plain open gives (umask)
    mode = (tmp_path / "all.csv").stat().st_mode & 0o777
    assert (tmp_path / "all.json").stat().st_mode & 0o777 == mode
    capsys.readouterr()

    # a run stopped after three files, while writing the fourth's record (a torn line)
    lines = full["csv"].splitlines(keepends=True)
    part = tmp_path / "part.csv"
    part.write_text("".join(lines[:4]) + lines[4][:20])
    assert _cli(model_dir, d, "--output", part, "--resume") == 0
    assert "--resume: 2 files already in" in capsys.readouterr().err  # the last one is redone
    assert part.read_text() == full["csv"]
    assert part.stat().st_mode & 0o777 == mode  # the rewrite keeps the file's mode
    jl = full["jsonl"].splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_text("".join(jl[:5]))
    assert _cli(model_dir, d, "--format", "jsonl", "--output", part, "--resume") == 0
    assert part.read_text() == full["jsonl"]
    part = tmp_path / "part.json"
    part.write_text(json.dumps(json.loads(full["json"])[:3], indent=2) + "\n")
    assert _cli(model_dir, d, "--format", "json", "--output", part, "--resume") == 0
    assert part.read_text() == full["json"]
    capsys.readouterr()

    other = tmp_path / "other.keras"  # another model's output is not resumed into
    other.write_bytes((model_dir / "model.keras").read_bytes() + b"\0")
    code = predict_main([str(d), "--model", str(other), "--no-detect", "--output",
                         str(tmp_path / "all.csv"), "--resume"])
    assert code == 2 and "holds records of another model" in _error_line(capsys)


def test_a_json_list_is_written_whole_at_the_end(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("[]\n")  # an earlier output stays whole until the new one replaces it
    writer = O.Writer(out, "json", O.ModelStamp("compact", "ab"))
    writer.write([P._record("a.jpg", error="x")])
    assert out.read_text() == "[]\n"
    writer.close()
    assert json.loads(out.read_text()) == [{**P._record("a.jpg", error="x"), "model_family": "compact",
                                            "model_sha256": "ab"}]


def test_special_and_oversized_files_are_per_file_errors(predictor, tmp_path):
    import socket
    import threading

    d = _crops(tmp_path / "d", 2)
    os.mkfifo(tmp_path / "pipe.jpg")
    os.mkfifo(d / "0000b.jpg")  # also found by the folder walk
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.jpg"))
    (tmp_path / "big.jpg").write_bytes(b"\xff" * (3 << 20))
    done = []
    worker = threading.Thread(target=lambda: done.append(P.Predictor(
        predictor.model, info=predictor.info, workers=2, max_file_mb=2).predict(
        [tmp_path / "pipe.jpg", "/dev/zero", tmp_path / "sock.jpg", tmp_path / "big.jpg", d],
        detect=False)), daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "a FIFO or device hung the predictor"
    by_file = {os.path.basename(r["file"]): r["error"] for r in done[0]}
    assert "not a regular file (a FIFO)" in by_file["pipe.jpg"]
    assert "not a regular file (a character device)" in by_file["zero"]
    assert "not a regular file (a socket)" in by_file["sock.jpg"]
    assert "file too large (3.0 MB, above the 2 MB cap" in by_file["big.jpg"]
    assert "a FIFO" in by_file["0000b.jpg"]
    assert by_file["0000.jpg"] is None and by_file["0001.jpg"] is None
    sock.close()


def test_decompression_bomb_warnings_and_errors_name_the_file(predictor, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    _save(_face(0, size=120), tmp_path / "warned.png")  # 1.44x the limit: Pillow warns
    _save(_face(1, size=150), tmp_path / "refused.png")  # above 2x: Pillow refuses
    with caplog.at_level("WARNING", logger="predict"):
        records = predictor.predict([tmp_path / "warned.png", tmp_path / "refused.png"], detect=False)
    assert records[0]["error"] is None
    assert f"{tmp_path / 'warned.png'}: 120 x 120 pixels, above Pillow's decompression-bomb" in caplog.text
    assert records[1]["file"].endswith("refused.png") and "decompression bomb" in records[1]["error"]


def test_a_progress_bar_counts_files_on_stderr(model_dir, tmp_path, capsys):
    d = _crops(tmp_path / "d", 5)
    assert _cli(model_dir, d, "--output", tmp_path / "o.csv", "--progress", "on") == 0
    assert "5/5" in capsys.readouterr().err


def test_arguments_and_the_model_file_are_checked_before_tensorflow_loads(tmp_path):
    import subprocess
    import sys

    script = ("import sys\nfrom agegender.prediction.cli import console\n"
              "rc = console(sys.argv[1:])\nprint('tensorflow' in sys.modules, rc)")
    for args in (["x.jpg", "--model", str(tmp_path / "none.keras")],
                 ["x.jpg", "--model", str(tmp_path / "none.keras"), "--output", str(tmp_path)]):
        run = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                             cwd=str(ROOT), timeout=120)
        # exit 2 with TensorFlow never imported: what made it fast (no wall-clock bound here, which
        # would fail on a slower CPU than this one; benchmarks measure speed, tests behaviour)
        assert run.stdout.split() == ["False", "2"], run.stderr


@pytest.mark.parametrize("sig", ["SIGTERM", pytest.param("SIGKILL", marks=pytest.mark.slow)])
def test_a_run_killed_midway_keeps_every_record_made_and_resumes(model_dir, tmp_path, sig):
    import csv
    import signal
    import subprocess
    import sys
    import time

    n = 1500
    d = _crops(tmp_path / "d", n)
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "stages.predict", str(d), "--model", str(model_dir / "model.keras"),
           "--no-detect", "--no-tta", "--workers", "1", "--output", str(out)]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and (
            not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be stopped: use more images"
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert 0 < len(rows) < n
    assert [r["file"] for r in rows] == [str(d / f"{i:04d}.jpg") for i in range(len(rows))]
    assert all(r["age"] and r["model_sha256"] for r in rows)  # complete records only
    if sig == "SIGTERM":
        assert proc.returncode == 130 and f"interrupted after {len(rows)} files" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    rerun = subprocess.run(cmd + ["--resume", "-q"], cwd=str(ROOT), capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["file"] for r in rows] == [str(d / f"{i:04d}.jpg") for i in range(n)]


def test_a_stop_during_a_batch_waits_for_the_batch_to_be_written_and_counted():
    """Ctrl-C / SIGTERM inside the write of a batch: the batch is finished, then the run stops
    (the killed-run test above can hit the middle of a batch's write, when the file first grows)."""
    import os
    import signal

    from agegender.prediction.cli import _Stop

    stop, done = _Stop(), []
    previous = signal.signal(signal.SIGTERM, stop.handle)
    try:
        with pytest.raises(KeyboardInterrupt):
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside the block
                done.append("written")
                done.append("counted")
        assert done == ["written", "counted"]
        with pytest.raises(KeyboardInterrupt):  # outside a batch: at once
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("never")
        assert "never" not in done
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_records_carry_the_age_interval_and_the_models_gender_temperature(model_dir):
    """Every record holds the 80 % age interval (whole years) beside the age; a model saved with a
    temperature states a softer confidence of the same gender, one without states the network's."""
    from dataclasses import replace

    from agegender.serving.calibration import GenderCalibration, apply_temperature

    faces = [_face(i) for i in range(4)]
    plain = P.Predictor(model_dir / "model.keras", tta=False)
    assert plain.info.gender_calibration is None
    soft = P.Predictor(plain.model, info=replace(plain.info, gender_calibration=GenderCalibration(3.0, 500, "val")),
                       tta=False)
    for a, b in zip(plain.predict(faces, detect=False), soft.predict(faces, detect=False)):
        assert isinstance(a["age_low"], int) and isinstance(a["age_high"], int)
        assert a["age_low"] <= a["age_high"] and (a["age_low"], a["age_high"]) == (b["age_low"], b["age_high"])
        assert a["gender"] == b["gender"] and 0.5 <= b["gender_probability"] <= a["gender_probability"]
        # the confidence of the predicted gender is sigmoid(logit / T) of the network's
        assert b["gender_probability"] == pytest.approx(apply_temperature(a["gender_probability"], 3.0), abs=2e-4)
    buffer = io.StringIO()
    _write_csv(plain.predict(faces[:1], detect=False), buffer)
    header, row = buffer.getvalue().splitlines()
    assert header.split(",")[header.split(",").index("age"):][:3] == ["age", "age_low", "age_high"]
