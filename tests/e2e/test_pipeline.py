"""End to end: `dvc repro` of the real dvc.yaml on a small synthetic UTKFace folder (1 epoch)."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from dvc_project import (DVC, GIT, assert_one_copy, cache_file, cached_files, changed_stages, declared_figures,
                         md5)
from dvc_project import run as _run

pytestmark = pytest.mark.slow  # each test runs DVC pipelines that train


def test_dvc_repro_end_to_end(trained_project, trained_copy):
    """`dvc repro` of a fresh project (the shared run of conftest.py's trained_project) runs every
    stage and leaves its outputs linked to the cache; the rest runs on this test's copy of it."""
    out = trained_project.repro_output
    for stage in ("check_params", "ingest", "preprocess", "train", "evaluate", "plot", "model_card"):
        assert f"Running stage '{stage}'" in out
    # one copy on disk (.dvc/config cache.type): each cached output is a link to its cache entry,
    # as the run left it (the copy's links are `dvc checkout --relink`'s)
    kinds = assert_one_copy(trained_project.path)
    project = trained_copy
    assert "data/processed/train_images.npy" in kinds and "models/model.keras" in kinds
    assert "kfold" not in out and not (project / "kfold" / "metrics.json").exists()
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert 0 <= metrics["age"]["mae"] < 120 and 0 <= metrics["gender"]["accuracy"] <= 1
    # trained from the images, no feature pass: the run's whole cost is its training
    assert metrics["cost"]["total_tflop"] == metrics["cost"]["train_tflop"] > 0
    assert "features_tflop" not in metrics["cost"]
    predictions = pd.read_csv(project / "reports/predictions.csv")
    assert len(predictions) == metrics["test_images"] > 0
    quality = json.loads((project / "reports/data_quality.json").read_text())
    assert set(quality["skipped_by_reason"]) == {"malformed_name", "out_of_range",
                                                 "unreadable_image", "duplicate"}
    assert set(metrics["fairness"]) == {"race", "gender", "age_group", "life_stage", "race_x_gender",
                                        "life_stage_x_gender"}
    assert 0 <= metrics["gender"]["ece"] <= 1 and 0 <= metrics["age"]["interval_coverage"] <= 1
    assert quality["coverage"]["train_val"]["faces"] == int(
        (pd.read_csv(project / "data/interim/labels.csv")["split"] != "test").sum())
    assert metrics["fairness"]["race"]["mae_gap"] >= 0
    breakdown = json.loads((project / "reports/breakdown.json").read_text())
    assert sum(row["n"] for row in breakdown["race"]["groups"]) == len(predictions)
    for figure in declared_figures(project / "dvc.yaml"):  # every declared figure is drawn
        assert (project / figure).stat().st_size > 1000, figure
    card = (project / "reports/model_card.md").read_text()
    for heading in ("## Data", "## Split", "## Model and parameters", "## Headline metrics",
                    "## Fairness breakdown", "## Training data coverage", "## Known limitations"):
        assert heading in card
    # DVC renders every declared plot (images and data plots) without a load error
    shown = _run([*DVC, "plots", "show", "-o", "plots_html"], project)
    assert "failed to load" not in shown
    html = (project / "plots_html" / "index.html").read_text()
    for figure in declared_figures(project / "dvc.yaml"):
        assert figure.replace("/", "_") in html, figure
    assert (project / "models/model.keras").is_file()
    # nothing changed: a second repro runs no stage
    again = _run([*DVC, "repro"], project)
    assert "Running stage" not in again
    dag = _run([*DVC, "dag", "--dot"], project)
    for a, b in [("ingest", "preprocess"), ("preprocess", "train"), ("train", "evaluate"),
                 ("evaluate", "plot"), ("evaluate", "model_card")]:
        assert f'"{a}" -> "{b}"' in dag

    _edits_rerun_exactly_the_stages_that_run_the_edited_code(project)
    _a_bad_setting_stops_the_pipeline_before_any_stage_removes_outputs(project)
    _a_stage_run_again_writes_new_files_and_checkout_switches_linked_versions(project)


def _edit(path, check):
    """Append a comment to the module ``path``, call ``check()``, then put the file back."""
    text = path.read_text()
    path.write_text(text + "\n# edited\n")
    try:
        check()
    finally:
        path.write_text(text)


def _edits_rerun_exactly_the_stages_that_run_the_edited_code(project):
    """dvc.yaml declares each stage's code file by file (tools/sync_dvc_deps.py), so an edit is
    seen by every stage that runs the edited file, and by no other."""
    code = project / "agegender"

    def networks():  # train builds the networks; evaluate, plot and model_card reach the saved
        # model's custom layers / information (agegender/serving/saved.py): all downstream of train
        changed = changed_stages(project)
        assert changed == {"features", "train", "evaluate", "plot", "model_card"}, sorted(changed)
        dry = _run([*DVC, "repro", "--dry"], project)
        assert "Running stage 'train'" in dry
        for stage in ("check_params", "ingest", "preprocess"):
            assert f"Running stage '{stage}'" not in dry, dry

    def labelled():  # labelled sets are ingest's and preprocess's business, not train's
        assert changed_stages(project) == {"ingest", "preprocess"}

    def bins():  # the age bins stratify the split, score every model and hold the families'
        assert {"check_params", "ingest", "preprocess", "train", "evaluate", "plot"} <= changed_stages(project)

    _edit(code / "model" / "networks.py", networks)
    _edit(code / "data" / "labelled.py", labelled)
    _edit(code / "data" / "bins.py", bins)
    assert changed_stages(project) == set()  # the files put back: nothing to run


def _a_bad_setting_stops_the_pipeline_before_any_stage_removes_outputs(project):
    """A typo planted in params.yaml by hand (not through -S, which DVC checks itself) stops
    `dvc repro` at check_params with one line naming the key; the trained model stays. A valid
    edit re-runs the check (its output is constant) and only the stages that use the setting."""
    path = project / "params.yaml"
    good = path.read_text()
    params = yaml.safe_load(good)
    params["models"]["compact"]["architecture"]["wieghts"] = None
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    model = (project / "models/model.keras").read_bytes()
    out = _run([*DVC, "repro"], project, ok=False)
    named = [line for line in out.splitlines() if "models.compact.architecture.wieghts" in line]
    assert len(named) == 1 and "unknown key" in named[0] and "Traceback" not in out, out
    assert "Running stage 'check_params'" in out and out.count("Running stage") == 1, out
    assert (project / "models/model.keras").read_bytes() == model

    params = yaml.safe_load(good)
    params["evaluate"]["batch_size"] = 128
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    out = _run([*DVC, "repro"], project)
    assert "Running stage 'check_params'" in out and "Running stage 'evaluate'" in out
    for stage in ("ingest", "preprocess", "train"):
        assert f"Running stage '{stage}'" not in out, out
    assert (project / "models/model.keras").read_bytes() == model


def _cache_entries(project) -> set[str]:
    root = project / ".dvc" / "cache" / "files" / "md5"
    return {f.parent.name + f.name for f in root.glob("*/*")}


def _a_stage_run_again_writes_new_files_and_checkout_switches_linked_versions(project):
    """With the outputs linked to the cache (read-only, but not to root: a stage writing into one
    would write into the cache), a stage that runs again writes new files, because DVC removes its
    outputs first: another image profile makes preprocess rewrite every array (in place, were the
    files still there: agegender/data/preprocessing.py opens them "wb"), and every cache entry of
    the run before still holds what its name says. `dvc checkout` between the two commits gives each
    one's files, linked, and `dvc repro` then runs nothing."""
    _run([*GIT, "add", "-A"], project)
    _run([*GIT, "commit", "-qm", "run"], project)
    _run([*GIT, "branch", "rgb72"], project)
    before, entries = cached_files(project), _cache_entries(project)
    arrays = sorted(p for p in before if p.startswith("data/processed/"))
    inodes = {p: (project / p).stat().st_ino for p in arrays}
    assert len(arrays) == 7  # {train,val,test}_{images,labels}.npy, profile.json

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"] = "sigmoid_bins"  # gray70 faces instead of the default's rgb72
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _run([*DVC, "repro", "preprocess"], project)
    assert "Running stage 'preprocess'" in out and "Running stage 'ingest'" not in out, out
    for path, value in before.items():  # the run before's outputs, as the cache holds them
        assert md5(cache_file(project, value)) == value, f"{path}: cache entry {value} changed"
    after = cached_files(project)
    for path in arrays:  # a new file (inode): the old one's inode is still the cache entry's
        assert (project / path).stat().st_ino != inodes[path], f"{path} written through the link"
    assert {p for p in arrays if after[p] != before[p]} >= {
        f"data/processed/{split}_images.npy" for split in ("train", "val", "test")}
    # a file whose content the cache already held (the labels: the same faces) DVC leaves as the
    # stage wrote it, a copy, until `dvc checkout --relink` (docs/scaling.md); the rest are links
    again = {p for p, v in after.items() if v in entries}
    assert_one_copy(project, may_be_copies=again)
    _run([*GIT, "checkout", "-q", "-b", "gray70"], project)
    _run([*GIT, "add", "-A"], project)
    _run([*GIT, "commit", "-qm", "gray70"], project)

    _run([*GIT, "checkout", "-q", "rgb72"], project)
    _run([*DVC, "checkout"], project)
    assert cached_files(project) == before
    assert_one_copy(project, may_be_copies=again)
    _run([*DVC, "checkout", "--relink"], project)
    kinds = assert_one_copy(project)
    assert "Running stage" not in _run([*DVC, "repro"], project)
    _run([*GIT, "checkout", "-q", "gray70"], project)
    _run([*DVC, "checkout"], project)
    assert cached_files(project) == after
    assert_one_copy(project)
    assert "preprocess" not in changed_stages(project)
    _run([*GIT, "checkout", "-q", "rgb72"], project)
    _run([*DVC, "checkout"], project)
    assert assert_one_copy(project) == kinds

    # what reads the arrays reads them through the links: positioned reads and a read-only map
    from agegender.data.arrays import load_split

    images, labels = load_split(project / "data/processed", "test")
    mapped = np.load(project / "data/processed/test_images.npy", mmap_mode="r")
    assert images.shape == mapped.shape and mapped.shape[1:] == (72, 72, 3) and len(labels) == len(mapped)
    assert np.array_equal(images.take(np.arange(len(mapped))), mapped)


def test_missing_data_stops_the_first_stage_with_the_readmes_message(project):
    """With no raw data, `dvc repro` ends at check_params with the one line of
    agegender.data.source.check_source (README, "Getting the data"), not DVC's missing-dependency
    error for ingest."""
    shutil.rmtree(project / "data" / "raw" / "UTKFace")
    out = _run([*DVC, "repro"], project, ok=False)
    lines = [line for line in out.splitlines() if line.startswith("check_params: error:")]
    assert len(lines) == 1 and "raw data not found at data/raw/UTKFace" in lines[0], out
    assert "README 'Getting the data'" in lines[0]
    assert "does not exist" not in out and "Running stage 'ingest'" not in out, out
