"""``agegender-predict --annotate DIR``: each photo written again with its faces drawn, mirroring
the input folders, never over an input or an earlier file (agegender/prediction/annotate.py).

The model is tests/helpers/fixtures/saved_compact.keras (tiny, loads in a second); faces are found by the
real default detector (MTCNN) on matplotlib's sample portrait.
"""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender.prediction import annotate as A
from agegender.prediction import predictor as P
from agegender.prediction.cli import console as predict_main
from agegender.prediction.inputs import expand
from locations import FIXTURES

MODEL = FIXTURES / "saved_compact.keras"


def _cli(*args):
    return predict_main([*map(str, args), "--model", str(MODEL), "--workers", "2", "--no-tta"])


def _photo(portrait, mirrored=False):
    """The portrait on a wider grey canvas, so part of the picture is far from the face."""
    canvas = Image.new("RGB", (900, 640), (128, 128, 128))
    face = portrait.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirrored else portrait
    canvas.paste(face, (20 if not mirrored else 368, 20))
    return canvas


def _box(csv_text, name):
    import csv
    import io

    rows = [r for r in csv.DictReader(io.StringIO(csv_text)) if r["file"] == name]
    assert len(rows) == 1, rows
    return [round(float(rows[0][k])) for k in ("box_x", "box_y", "box_w", "box_h")]


def test_the_portrait_is_written_at_its_mirrored_path_with_its_face_drawn(portrait, tmp_path, monkeypatch, capsys):
    src = tmp_path / "in" / "trip" / "day1"
    src.mkdir(parents=True)
    _photo(portrait).save(src / "hopper.png")
    Image.new("RGB", (300, 200), (90, 160, 90)).save(src / "lawn.png")  # no face in it
    monkeypatch.chdir(tmp_path)
    assert _cli("in", "--annotate", "out", "--format", "csv") == 1  # lawn.png: no face, an error
    x, y, w, h = _box(capsys.readouterr().out, "in/trip/day1/hopper.png")
    original = np.asarray(Image.open(src / "hopper.png").convert("RGB")).astype(int)
    drawn_file = tmp_path / "out" / "trip" / "day1" / "hopper.png"  # the tree inside `in` mirrored
    drawn = np.asarray(Image.open(drawn_file).convert("RGB")).astype(int)
    assert drawn.shape == original.shape
    assert 150 < w < 450 and 20 < x and 20 < y  # the face of the 512 x 600 portrait, found
    # the box's outline differs from the photo; far from the box (the right of the canvas), equal
    outline = (drawn[y:y + h, x:x + 2] != original[y:y + h, x:x + 2]).any(axis=-1)
    assert outline.mean() > 0.9
    assert (drawn[:, x + w + 100:] == original[:, x + w + 100:]).all()
    assert (drawn[y + h + 100:] == original[y + h + 100:]).all()
    # the picture with no face is written too, at its size, its note in the corner, the rest equal
    lawn = np.asarray(Image.open(tmp_path / "out" / "trip" / "day1" / "lawn.png").convert("RGB"))
    assert lawn.shape == (200, 300, 3)
    assert (lawn[:8, :40] != (90, 160, 90)).any() and (lawn[100:, :] == (90, 160, 90)).all()
    assert sorted(p.name for p in src.iterdir()) == ["hopper.png", "lawn.png"]  # inputs untouched


def test_two_files_of_one_name_in_two_folders_get_two_pictures(portrait, tmp_path, monkeypatch):
    for folder, mirrored in (("a", False), ("b", True)):
        (tmp_path / folder).mkdir()
        _photo(portrait, mirrored).save(tmp_path / folder / "x.jpg", quality=95)
    monkeypatch.chdir(tmp_path)
    assert _cli("a/x.jpg", "b", "--annotate", "out", "--output", "p.csv") == 0
    for folder in ("a", "b"):
        src = np.asarray(Image.open(tmp_path / folder / "x.jpg")).astype(int)
        own = np.asarray(Image.open(tmp_path / "out" / folder / "x.jpg")).astype(int)
        other = np.asarray(Image.open(tmp_path / "out" / ("b" if folder == "a" else "a") / "x.jpg"))
        assert own.shape == src.shape
        # each picture is its own photo (JPEG written again: close, not equal), not the other one
        assert np.abs(own - src).mean() < 3 < np.abs(other.astype(int) - src).mean()


def test_destinations_keep_what_tells_inputs_apart(tmp_path, monkeypatch):
    for name in ("a/x.jpg", "b/x.jpg", "b/deep/y.png", "c/z.dat"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    out = Path("out")
    dest = lambda *roots: {k: v.as_posix() for k, v in A.destinations(expand(list(roots)), list(roots), out).items()}  # noqa: E731
    assert dest("b") == {"b/deep/y.png": "out/deep/y.png", "b/x.jpg": "out/x.jpg"}
    assert dest("a/x.jpg") == {"a/x.jpg": "out/x.jpg"}
    assert dest("a/x.jpg", "b/x.jpg") == {"a/x.jpg": "out/a/x.jpg", "b/x.jpg": "out/b/x.jpg"}
    assert dest(str(tmp_path / "b"), "a")[str(tmp_path / "b" / "deep" / "y.png")] == "out/b/deep/y.png"
    assert dest("c/z.dat") == {"c/z.dat": "out/z.dat.png"}  # a name PIL cannot write: + .png


def test_an_annotate_folder_that_would_overwrite_or_feed_the_inputs_is_refused(tmp_path, monkeypatch,
                                                                             capsys):
    monkeypatch.setattr(P.Predictor, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(tmp_path / "in" / "sub" / "x.png")
    before = (tmp_path / "in" / "sub" / "x.png").read_bytes()
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "x.png").write_bytes(b"an earlier picture")
    (tmp_path / "file").write_text("")
    monkeypatch.chdir(tmp_path)
    for args, problem in [
            (["in", "--annotate", "in"], "is or is inside the input folder"),
            (["in", "--annotate", "in/sub/pictures"], "is or is inside the input folder"),
            (["in/sub/x.png", "--annotate", "in/sub"], "over the input"),  # DIR/x.png is it
            (["in", "done", "--annotate", "."], "over the input"),  # ./in/sub/x.png is it
            (["in/sub/x.png", "--annotate", "file"], "is a file"),
            (["in/sub/x.png", "--annotate", "done"], "exist already")]:
        assert _cli(*args) == 2, args
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and problem in err[0], (args, err)
    assert (tmp_path / "in" / "sub" / "x.png").read_bytes() == before
    assert (tmp_path / "done" / "x.png").read_bytes() == b"an earlier picture"


def test_a_rerun_is_refused_and_resume_continues_into_the_same_pictures(tmp_path, monkeypatch, capsys):
    from synthetic import face

    (tmp_path / "crops").mkdir()
    for i in range(3):
        face(20 + 20 * i, i % 2, np.random.default_rng(i), size=64).save(tmp_path / "crops" / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    run = ["crops", "--no-detect", "--output", "p.csv", "--annotate", "out"]
    assert _cli(*run) == 0
    pictures = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert pictures == ["0.png", "1.png", "2.png"]  # the tree inside `crops`, no temporary left
    drawn = np.asarray(Image.open(tmp_path / "out" / "1.png"))
    assert drawn.shape == (64, 64, 3) and (drawn[0, :] != np.asarray(Image.open("crops/1.png"))[0, :]).any()
    capsys.readouterr()
    assert _cli(*run) == 2  # the same command again: its pictures are there
    assert "3 of the pictures exist already" in capsys.readouterr().err
    assert _cli(*run, "--resume") == 0  # the last file predicted again, its picture replaced
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == pictures


def test_the_label_shows_the_age_interval_when_the_model_gives_one():
    from agegender.prediction.annotate import label

    rec = {"age": 34.4, "age_low": 28, "age_high": 41, "gender": "female", "gender_probability": 0.55}
    assert label(rec) == "34 (28-41) F 55%"
    assert label({**rec, "age_low": None, "age_high": None}) == "34 F 55%"  # a regression model
