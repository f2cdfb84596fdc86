"""Labelled sets of your own (labels.csv + images): validation, reasons, dedupe, and their rows
through ingest, preprocess and the fairness breakdown (race may be unknown)."""
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from agegender.data import ingest, labelled
from agegender.data.preprocessing import write_arrays
from agegender.data.source import SourceError
from agegender.evaluation import breakdown
from agegender.evaluation.model_card import data_section
from synthetic import face, make_labelled


def _append(csv, *lines):
    csv.write_text(csv.read_text() + "".join(f"{line}\n" for line in lines))


@pytest.fixture
def extra(tmp_path):
    """data/extra with two sets: 'appa' (with race, plus one row of every defect) and 'inhouse'
    (no race column)."""
    root = tmp_path / "extra"
    appa = make_labelled(root / "appa", n=10, seed=3)
    make_labelled(root / "inhouse", n=6, seed=4, race=False)
    folder = root / "appa"
    rng = np.random.default_rng(9)
    for name in ("bad_age.jpg", "bad_gender.jpg", "bad_race.jpg", "old.jpg", "unlisted.jpg"):
        face(40, 1, rng).save(folder / "img" / name)
    (folder / "img" / "broken.jpg").write_bytes((folder / "img" / "0000.jpg").read_bytes()[:200])
    shutil.copy(folder / "img" / "0001.jpg", folder / "img" / "copy.jpg")
    _append(folder / "labels.csv",
            "img/bad_age.jpg,thirty,male,0", "img/bad_gender.jpg,30,x,0", "img/bad_race.jpg,30,m,9",
            "img/old.jpg,130,f,", "img/gone.jpg,30,male,1", "img/broken.jpg,30,female,1",
            "img/copy.jpg,30,female,1", "img/0002.jpg,31,female,1", "../escape.jpg,30,male,1",
            "img/float.jpg,23.6,F,Asian")
    face(23, 1, rng).save(folder / "img" / "float.jpg")
    return root, appa


EXPECTED = {"appa/img/bad_age.jpg": "bad_label", "appa/img/bad_gender.jpg": "bad_label",
            "appa/img/bad_race.jpg": "bad_label", "appa/img/old.jpg": "out_of_range",
            "appa/img/gone.jpg": "missing_file", "appa/img/broken.jpg": "unreadable_image",
            "appa/img/unlisted.jpg": "unlabelled", "../escape.jpg": "missing_file"}


def test_each_bad_row_is_skipped_with_its_reason(extra):
    root, _ = extra
    rows, skipped = labelled.scan(root)
    reasons = {s.file: s.reason for s in skipped}
    for file, reason in EXPECTED.items():
        assert reasons[file] == reason, (file, reasons.get(file))
    details = {s.file: s.detail for s in skipped}
    assert "appa/labels.csv line 12" in details["appa/img/bad_age.jpg"]  # names the file and line
    assert "'thirty' is not a number" in details["appa/img/bad_age.jpg"]
    assert "'x' is not 0/1, male/female or m/f" in details["appa/img/bad_gender.jpg"]
    assert "listed but not found" in details["appa/img/gone.jpg"]
    # the second listing of 0002.jpg is a duplicate row; its first listing is kept
    assert [s.reason for s in skipped if s.file == "appa/img/0002.jpg"] == ["duplicate"]
    kept = {r.key: r.labels for r in rows}
    assert len(kept) == 10 + 6 + 2  # both sets' good rows, copy.jpg (same bytes: ingest's job), float
    assert kept["appa/img/float.jpg"] == labelled.Labels(24, 1, 2)  # 23.6 -> 24, F, Asian
    assert {kept[f"inhouse/img/{i:04d}.jpg"].race for i in range(6)} == {-1}  # no race column


def test_ingest_adds_labelled_sets_with_dedupe_across_sources(extra, utk_dir, tmp_path):
    root, _ = extra
    folder, written = utk_dir
    # the same image in UTKFace and in a set: the UTKFace one is kept
    shutil.copy(folder / written["valid"][5], root / "inhouse" / "img" / "utk_copy.jpg")
    _append(root / "inhouse" / "labels.csv", "img/utk_copy.jpg,40,male")
    report = ingest.ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.1, 0.1, seed=1, extra=root)
    labels = pd.read_csv(tmp_path / "l.csv")
    reasons = {s["file"]: s for s in report["skipped"]}
    for file, reason in EXPECTED.items():
        assert reasons[file]["reason"] == reason
    assert reasons["inhouse/img/utk_copy.jpg"]["reason"] == "duplicate"
    assert written["valid"][5] in reasons["inhouse/img/utk_copy.jpg"]["detail"]
    assert reasons["appa/img/copy.jpg"]["reason"] == "duplicate"  # sorts after 0001.jpg
    assert labels["hash"].is_unique and "appa/img/0001.jpg" in set(labels["file"])
    # nothing silently dropped, over both sources
    assert len(labels) + len(report["skipped"]) == report["images_seen"]
    assert report["kept_by_source"] == {"UTKFace": 60, f"{root}/appa": 11, f"{root}/inhouse": 6}
    assert (labels.loc[labels["file"].str.startswith("inhouse/"), "race"] == -1).all()
    assert set(labels["split"]) == {"train", "val", "test"}

    # preprocess finds every kept image, UTKFace's by name and the sets' by path
    meta = write_arrays(folder, tmp_path / "l.csv", tmp_path / "arrays", "rgb64", extra=root)
    assert sum(meta["counts"].values()) == len(labels)
    assert np.load(tmp_path / "arrays" / "train_labels.npy")[:, 2].min() >= -1

    # the model card's data section and the race breakdown show the unknown race, no crash
    card = "\n".join(data_section(report, labels, str(folder)))
    assert "Unknown" in card and "`bad_label`" in card and "Kept images by source" in card
    df = labels.assign(pred_age=labels["age"] + 1.0, gender_prob=labels["gender"] * 0.9)
    full = breakdown.breakdown(df)
    groups = {row["group"]: row["n"] for row in full["race"]["groups"]}
    assert groups["Unknown"] == 6 and sum(groups.values()) == len(df)
    assert sum(row["n"] for row in full["race_x_gender"]["groups"]) == len(df)


def test_utkface_alone_has_no_unknown_race_group(utk_dir, tmp_path):
    folder, _ = utk_dir
    report = ingest.ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.1, 0.1, seed=1)
    assert "kept_by_source" not in report  # the UTKFace-only report is as before
    labels = pd.read_csv(tmp_path / "l.csv")
    df = labels.assign(pred_age=labels["age"] * 1.0, gender_prob=labels["gender"] * 1.0)
    assert "Unknown" not in {row["group"] for row in breakdown.breakdown(df)["race"]["groups"]}


@pytest.mark.parametrize("header, problem", [("file,age", "missing column(s) gender"),
                                              ("name,age,gender", "missing column(s) file")])
def test_a_csv_without_its_columns_is_an_error_naming_it(tmp_path, header, problem):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "labels.csv").write_text(header + "\nimg.jpg,3\n")
    with pytest.raises(SourceError, match=re.escape(f"set/labels.csv: {problem}")):
        labelled.scan(tmp_path)


def test_a_missing_extra_folder_is_an_error(tmp_path, utk_dir):
    with pytest.raises(SourceError, match="labelled data folder not found"):
        ingest.scan(utk_dir[0], tmp_path / "nowhere")


def test_an_empty_extra_folder_adds_nothing(tmp_path, utk_dir):
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "README.md").write_text("no images here\n")
    with_extra, skipped_extra = ingest.scan(utk_dir[0], tmp_path / "extra")
    alone, skipped = ingest.scan(utk_dir[0])
    pd.testing.assert_frame_equal(with_extra, alone)
    assert skipped_extra == skipped


def test_params_know_data_extra_and_external():
    from agegender.params import ParamsError, parse_params
    from project_params import raw_params

    params = parse_params(raw_params({"data.extra": "data/extra", "external.detect": True}))
    assert params.data.extra == "data/extra" and params.external.detect is True
    with pytest.raises(ParamsError, match="external.detect"):
        parse_params({"data": {"source": "x"}, "external": {"detect": "yes"}})
    json.dumps(params.external.model_dump())
