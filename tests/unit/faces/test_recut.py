"""Faces as the predictor cuts them (``preprocess.faces: aligned``): a chip recut by the detector
behind the detector interface, in preprocess and on its own, with a fake detector (fixed landmarks)."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from agegender import commands
from agegender.data.ingest import ingest
from agegender.data.preprocessing import NO_FACE, write_arrays
from agegender.faces.alignment import CHIP_LANDMARKS, cut_face
from agegender.faces.detector import Box, Face
from agegender.faces.recut import CHIP_PAD, Recutter, pick_face, recut
from project_params import write_params
from stages import check_params

ANGLE = 12.0  # degrees the fake face is turned: its aligned cut cannot be the chip


def _turned_landmarks(side: float, cx: float, cy: float) -> np.ndarray:
    a = math.radians(ANGLE)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (CHIP_LANDMARKS - 0.5) @ rot.T * side + [cx, cy]


class FakeDetector:
    """Finds a face in a padded chip whose centre is bright green (the synthetic women: their disc
    is (200, 230, 120), the men's (200, 150, 120)); it comes back with fixed turned landmarks,
    with a smaller second face near a corner. Records the size of every picture it is shown."""

    def __init__(self):
        self.sizes = []

    def __call__(self, img):
        self.sizes.append(img.size)
        arr = np.asarray(img.convert("RGB"))
        h, w = arr.shape[:2]
        if arr[h // 2, w // 2, 1] < 190:
            return []
        side = w - 2 * CHIP_PAD
        corner = Face(Box(CHIP_PAD, CHIP_PAD, 30, 30), 0.9, _turned_landmarks(30, CHIP_PAD + 15, CHIP_PAD + 15))
        main = Face(Box(CHIP_PAD + 20, CHIP_PAD + 20, side - 40, side - 40), 0.99,
                    _turned_landmarks(side, w / 2, h / 2))
        return [corner, main]  # left to right, as detectors return them


def _chip(green: int) -> np.ndarray:
    rng = np.random.default_rng(green)
    arr = rng.integers(0, 80, (200, 200, 3), dtype=np.uint8)
    arr[60:140, 60:140] = (200, green, 120)
    return arr


def test_recut_cuts_the_centre_face_aligned_and_keeps_a_faceless_chip():
    detector = FakeDetector()
    chip = _chip(230)
    cut, faces = recut(chip, detector)
    assert detector.sizes == [(200 + 2 * CHIP_PAD, 200 + 2 * CHIP_PAD)]  # searched padded
    assert faces == 2 and cut.shape == (200, 200, 3) and cut.dtype == np.uint8
    assert not np.array_equal(cut, chip)
    # the centre face, its landmarks moved back to chip pixels, cut from the chip itself
    expected = cut_face(Image.fromarray(chip), Face(Box(20, 20, 160, 160), 0.99,
                                                    _turned_landmarks(200, 100, 100)))
    assert np.array_equal(cut, np.asarray(expected))
    faceless = _chip(150)
    same, faces = recut(faceless, detector)
    assert faces == 0 and np.array_equal(same, faceless)


def test_pick_face_takes_the_nearest_centre_then_the_larger():
    big_off = Face(Box(0, 0, 120, 120))  # centre (60, 60)
    small_mid = Face(Box(90, 90, 20, 20))  # centre (100, 100)
    assert pick_face([big_off, small_mid], 200, 200) is small_mid
    larger = Face(Box(80, 80, 40, 40))  # also centred on (100, 100)
    assert pick_face([small_mid, larger], 200, 200) is larger
    assert pick_face([], 200, 200) is None


def _preprocess(utk_dir, tmp_path, out, **kw):
    folder, _ = utk_dir
    labels_csv = tmp_path / "l.csv"
    if not labels_csv.exists():
        ingest(folder, labels_csv, tmp_path / "q.json", 0.2, 0.2, seed=0)
    write_arrays(folder, labels_csv, tmp_path / out, "rgb64", faces_out=tmp_path / f"{out}.json", **kw)
    return pd.read_csv(labels_csv)


def test_aligned_preprocess_cuts_found_faces_keeps_the_rest_and_records_which(utk_dir, tmp_path):
    labels = _preprocess(utk_dir, tmp_path, "chips")
    _preprocess(utk_dir, tmp_path, "cuts", recutter=Recutter(FakeDetector()),
                cut_splits=["train", "val"])
    report = json.loads((tmp_path / "cuts.json").read_text())
    assert report["faces"] == "aligned" and report["cut_splits"] == ["train", "val"]
    kept = []
    for split in ("train", "val", "test"):
        chips, cuts = (np.load(tmp_path / out / f"{split}_images.npy") for out in ("chips", "cuts"))
        rows = labels[labels["split"] == split].reset_index(drop=True)
        women = (rows["gender"] == 1).to_numpy()
        assert women.any() and (~women).any()
        same = np.array([np.array_equal(a, b) for a, b in zip(chips, cuts)])
        counts = report["splits"][split]
        if split == "test":  # not in cut_splits: the chips, untouched
            assert same.all() and counts["cut"] == 0
            continue
        assert (same == ~women).all()  # cut where a face was found, the chip where not
        assert counts == {"images": len(rows), "cut": len(rows), "found": int(women.sum()),
                          "kept_as_chip": int((~women).sum()), "several_faces": int(women.sum()),
                          "found_rate": round(women.mean(), 4)}
        kept += [{"file": f, "split": split, "reason": NO_FACE} for f in rows.loc[~women, "file"]]
    assert report["kept_as_chip"] == kept
    assert len(report["several_faces"]) == sum(report["splits"][s]["found"] for s in ("train", "val"))
    chips_report = json.loads((tmp_path / "chips.json").read_text())
    assert chips_report["faces"] == "chips" and chips_report["kept_as_chip"] == []
    assert all(c["cut"] == 0 for c in chips_report["splits"].values())


def test_aligned_preprocess_is_deterministic(utk_dir, tmp_path):
    for out in ("a", "b"):
        _preprocess(utk_dir, tmp_path, out, recutter=Recutter(FakeDetector()))
    for name in sorted(p.name for p in (tmp_path / "a").iterdir()):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


@pytest.mark.parametrize("key, value, problem", [
    ("faces", "crops", "preprocess.faces: Input should be 'chips' or 'aligned'"),
    ("splits", ["train", "tset"], "preprocess.splits.1: Input should be 'train', 'val' or 'test'"),
])
def test_an_unknown_preprocess_setting_is_one_line(tmp_path, capsys, key, value, problem):
    path = write_params(tmp_path / "params.yaml", {"data.source": str(tmp_path), f"preprocess.{key}": value})
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(tmp_path / "ok")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and problem in err, err


@pytest.mark.slow
def test_the_stage_recuts_the_splits_params_name_with_mtcnn_in_worker_processes(utk_dir, tmp_path):
    """The real path: params.yaml's setting, MTCNN built in spawned workers. Synthetic drawings
    hold no face for it, so every recut image is kept as its chip, and recorded so."""
    from stages import preprocess

    folder, _ = utk_dir
    ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.2, 0.2, seed=0)
    # the compact family's rgb72 faces, as the chips below
    write_params(tmp_path / "params.yaml", {"data.source": str(folder), "data.extra": None, "model": "compact",
                                            "preprocess": {"faces": "aligned", "splits": ["test"]}})
    assert commands.run("preprocess", preprocess.main, [
        "--params", str(tmp_path / "params.yaml"), "--labels", str(tmp_path / "l.csv"),
        "--out-dir", str(tmp_path / "cuts"), "--faces-out", str(tmp_path / "faces.json")]) == 0
    write_arrays(folder, tmp_path / "l.csv", tmp_path / "chips", "rgb72")
    for split in ("train", "val", "test"):
        name = f"{split}_images.npy"
        assert (tmp_path / "cuts" / name).read_bytes() == (tmp_path / "chips" / name).read_bytes()
    report = json.loads((tmp_path / "faces.json").read_text())
    n_test = report["splits"]["test"]["images"]
    assert report["detector"] == "mtcnn" and report["cut_splits"] == ["test"]
    assert report["splits"]["test"] == {"images": n_test, "cut": n_test, "found": 0, "kept_as_chip": n_test,
                                        "several_faces": 0, "found_rate": 0.0}
    assert report["splits"]["train"]["cut"] == 0 and len(report["kept_as_chip"]) == n_test
