import json

import pandas as pd
import pytest

from agegender import commands
from agegender.data import ingest, splits
from agegender.data.bins import FIVE_YEAR
from agegender.data.source import SourceError
from stages import ingest as ingest_stage
from locations import ROOT


def test_every_defect_is_reported_with_its_reason(utk_dir, tmp_path):
    folder, written = utk_dir
    report = ingest.ingest(folder, tmp_path / "labels.csv", tmp_path / "dq.json", 0.1, 0.1, seed=1)
    skipped = {s["file"]: s["reason"] for s in report["skipped"]}
    for reason in ("malformed_name", "out_of_range", "unreadable_image", "duplicate"):
        for name in written[reason]:
            assert skipped[name] == reason
    assert report["skipped_by_reason"] == {r: len(written[r]) for r in written if r != "valid"}
    labels = pd.read_csv(tmp_path / "labels.csv")
    # nothing silently dropped: kept + skipped = everything seen
    assert len(labels) + len(skipped) == report["images_seen"] == sum(map(len, written.values()))
    assert json.loads((tmp_path / "dq.json").read_text())["images_kept"] == len(labels)


def test_duplicate_keeps_first_name_and_says_which(utk_dir, tmp_path):
    folder, written = utk_dir
    ingest.ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.1, 0.1, seed=1)
    labels = pd.read_csv(tmp_path / "l.csv")
    report = json.loads((tmp_path / "q.json").read_text())
    dup = [s for s in report["skipped"] if s["reason"] == "duplicate"][0]
    assert written["valid"][1] in dup["detail"] and written["valid"][1] in set(labels["file"])
    assert labels["hash"].is_unique


def test_split_is_deterministic_and_order_independent(utk_dir, tmp_path):
    folder, _ = utk_dir
    kept, _ = ingest.scan(folder)
    a = splits.stratified_split(kept, 0.1, 0.1, seed=7)
    b = splits.stratified_split(kept.sample(frac=1, random_state=0), 0.1, 0.1, seed=7).loc[a.index]
    assert (a == b).all()
    c = splits.stratified_split(kept, 0.1, 0.1, seed=8)
    assert (a != c).any()  # the seed matters


def test_split_fractions_and_stratification():
    rows = [{"file": f"{i:05d}", "age": age, "gender": g}
            for i, (age, g) in enumerate((a, g) for a in range(1, 100) for g in (0, 1) for _ in range(10))]
    df = pd.DataFrame(rows)
    split = splits.stratified_split(df, 0.1, 0.2, seed=0)
    counts = split.value_counts()
    assert counts["test"] == round(len(df) * 0.2) and counts["val"] == round(len(df) * 0.1)
    strata = FIVE_YEAR.encode(df["age"]) * 2 + df["gender"]
    for s in set(strata):
        share = (split[strata == s] == "test").mean()
        assert abs(share - 0.2) <= 1.0 / (strata == s).sum() + 1e-9


def test_no_content_hash_in_two_splits(utk_dir, tmp_path):
    folder, _ = utk_dir
    ingest.ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.2, 0.2, seed=3)
    labels = pd.read_csv(tmp_path / "l.csv")
    assert labels.groupby("hash")["split"].nunique().max() == 1
    assert set(labels["split"]) == {"train", "val", "test"}


def test_tar_archive_and_folder_give_the_same_labels(utk_dir, tmp_path):
    import tarfile

    folder, _ = utk_dir
    archive = tmp_path / "UTKFace.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="UTKFace")
    ingest.ingest(folder, tmp_path / "a.csv", tmp_path / "a.json", 0.1, 0.1, seed=1)
    ingest.ingest(archive, tmp_path / "b.csv", tmp_path / "b.json", 0.1, 0.1, seed=1)
    assert pd.read_csv(tmp_path / "a.csv").equals(pd.read_csv(tmp_path / "b.csv"))


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_or_empty_source_is_a_clear_error(tmp_path, make, capsys):
    source = tmp_path / "UTKFace"
    if make == "empty":
        source.mkdir()
    with pytest.raises(SourceError, match=str(source)):
        ingest.ingest(source, tmp_path / "l.csv", tmp_path / "q.json", 0.1, 0.1, seed=1)
    params = tmp_path / "params.yaml"
    params.write_text(f"data: {{source: {source}}}\nsplit: {{seed: 1, val_fraction: 0.1, test_fraction: 0.1}}\n")
    assert commands.run("ingest", ingest_stage.main, ["--params", str(params), "--labels-out", str(tmp_path / "l.csv"),
                                                  "--report-out", str(tmp_path / "q.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ingest: error: ") and str(source) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1  # one line, no traceback


REAL_ARCHIVE = ROOT.parent / "shared" / "data" / "UTKFace.tar.gz"


@pytest.mark.slow
@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason="shared UTKFace archive not present")
def test_real_archive_defects_are_all_accounted_for(tmp_path):
    """Smoke run on the real share (read by path, nothing copied into the project)."""
    report = ingest.ingest(REAL_ARCHIVE, tmp_path / "l.csv", tmp_path / "q.json", 0.1, 0.1, seed=42)
    assert report["images_seen"] == 21708
    assert report["skipped_by_reason"]["malformed_name"] == 5
    assert report["skipped_by_reason"]["duplicate"] > 0
    assert report["images_kept"] + report["images_skipped"] == report["images_seen"]
    labels = pd.read_csv(tmp_path / "l.csv")
    assert labels.groupby("hash")["split"].nunique().max() == 1


def test_coverage_counts_training_faces_per_race_gender_life_stage_and_flags_thin_cells():
    from agegender.data.coverage import coverage, markdown

    # 3 White male toddlers and 1 Asian female elder in train; 2 more White male toddlers in val;
    # a test face, never counted
    labels = pd.DataFrame({"age": [1, 2, 0, 70, 1, 2, 30], "gender": [0, 0, 0, 1, 0, 0, 1],
                           "race": [0, 0, 0, 2, 0, 0, 1],
                           "split": ["train"] * 4 + ["val"] * 2 + ["test"]})
    report = coverage(labels, min_faces=4)
    cells = {(c["race"], c["gender"], c["life_stage"]): c for c in report["train"]["cells"]}
    assert len(cells) == 5 * 2 * 6 and report["train"]["faces"] == 4
    assert cells[("White", "male", "0-2")] == {"race": "White", "gender": "male", "life_stage": "0-2",
                                              "n": 3, "thin": True}
    assert cells[("Asian", "female", "60+")]["n"] == 1 and cells[("Black", "female", "20-39")]["n"] == 0
    both = {(c["race"], c["gender"], c["life_stage"]): c for c in report["train_val"]["cells"]}
    assert both[("White", "male", "0-2")]["n"] == 5 and not both[("White", "male", "0-2")]["thin"]
    assert "White male 0-2" in report["train"]["thin"] and "White male 0-2" not in report["train_val"]["thin"]
    assert len(report["train_val"]["thin"]) == 59  # every cell but one is under 4 faces
    table = markdown(report, "train_val")
    assert "| race, gender | 0-2 | 3-12 | 13-19 | 20-39 | 40-59 | 60+ |" in table
    assert "| White male | 5 | 0 * |" in table and "| Asian female | 0 * | 0 * | 0 * | 0 * | 0 * | 1 * |" in table
    json.dumps(report)  # JSON-ready


def test_ingest_writes_the_coverage_report_when_asked(utk_dir, tmp_path):
    folder, _ = utk_dir
    ingest.ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.1, 0.1, seed=1, coverage_min_faces=100)
    report = json.loads((tmp_path / "q.json").read_text())
    labels = pd.read_csv(tmp_path / "l.csv")
    assert report["coverage"]["min_faces"] == 100
    assert report["coverage"]["train_val"]["faces"] == int(labels["split"].isin(["train", "val"]).sum())
    assert list(report)[-1] == "skipped"  # the long list stays last
