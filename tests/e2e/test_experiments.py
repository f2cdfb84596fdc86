"""End to end, experiments: `dvc exp run -S model=NAME` between variants, and k-fold as a
pipeline of its own (`dvc repro kfold/dvc.yaml`), on a small synthetic UTKFace folder (1 epoch).
Apart from test_pipeline.py so that the two files' minutes go to both test workers."""
import json
import re

import pandas as pd
import pytest

from dvc_project import DVC, GIT, assert_quiet
from dvc_project import run as _run

pytestmark = pytest.mark.slow  # each test runs DVC pipelines that train


def test_kfold_is_a_separate_pipeline(trained_copy):
    """`dvc repro kfold/dvc.yaml` runs ingest, preprocess, the face base's fetch (cv reads it when
    the model does) and the k-fold stages, never train; on a trained project (conftest.py's
    trained_project, train's outputs removed), k-fold runs its own stages and writes no model, its
    metrics read by name, and checkout says nothing about its outputs after it."""
    project = trained_copy
    dag = _run([*DVC, "dag", "--dot", "kfold/dvc.yaml"], project)  # what it runs on a fresh project
    assert set(re.findall(r'^"([^"]+)";$', dag, re.M)) == {
        "check_params", "ingest", "preprocess", "pretrained", "kfold/dvc.yaml:cv", "kfold/dvc.yaml:aggregate"}
    for output in ("models/model.keras", "models/train_summary.json"):  # k-fold needs none of train's
        (project / output).unlink()
    out = _run([*DVC, "repro", "kfold/dvc.yaml"], project)
    assert "Running stage 'kfold/dvc.yaml:cv'" in out and "Running stage 'kfold/dvc.yaml:aggregate'" in out
    for stage in ("ingest", "preprocess", "train"):  # the trained project's data reused; no training
        assert f"Running stage '{stage}'" not in out, out
    assert not (project / "models" / "model.keras").exists()
    result = json.loads((project / "kfold/metrics.json").read_text())
    assert result["n_folds"] == 2
    for stat in ("mean", "std"):
        assert set(result[stat]) >= {"age", "gender", "fairness"}
        assert result[stat]["age"]["mae"] >= 0
    folds = pd.read_csv(project / "kfold/folds/folds.csv")
    labels = pd.read_csv(project / "data/interim/labels.csv")
    # folds hold exactly the train + val images: the test split is never used
    assert set(folds["file"]) == set(labels.loc[labels["split"] != "test", "file"])
    for k in range(2):
        held = pd.read_csv(project / f"kfold/folds/fold_{k}/predictions.csv")
        assert set(held["file"]) == set(folds.loc[folds["fold"] == k, "file"])
    per_fold = pd.read_csv(project / "kfold/per_fold.csv")
    assert per_fold["age.mae"].std() == pytest.approx(result["std"]["age"]["mae"], abs=1e-3)
    assert "± " in (project / "kfold/summary.md").read_text()
    shown = _run([*DVC, "metrics", "show", "kfold/metrics.json"], project)
    assert "mean.age.mae" in shown
    _run([*GIT, "add", "-A"], project)
    _run([*GIT, "commit", "-qm", "kfold"], project)
    assert_quiet(_run([*DVC, "checkout"], project))
    assert "Running stage" not in _run([*DVC, "repro", "kfold/dvc.yaml"], project)


def _metrics(project):
    return json.loads((project / "reports/metrics.json").read_text())


def _assert_one_scale(metrics):
    """Every variant reports the same metrics (bins models add their own-bin accuracies)."""
    assert {"mae", "rmse", "cs5", "five_year_accuracy"} <= set(metrics["age"])
    assert {"accuracy", "f1", "roc_auc"} <= set(metrics["gender"])
    assert {"parameters", "train_seconds", "inference_images_per_second", "total_tflop"} <= set(metrics["cost"])
    assert metrics["cost"]["parameters"] > 0 and metrics["cost"]["train_seconds"] > 0


def test_exp_run_switches_between_a_bins_and_a_regression_variant(project):
    """`dvc exp run -S model=NAME` for a bins variant then a regression variant: the image
    profile follows the model, ingest is not re-run, both experiments' metrics compare."""
    out = _run([*DVC, "exp", "run", "-S", "model=sigmoid_bins"], project)
    assert "Running stage 'train'" in out
    assert json.loads((project / "data/processed/profile.json").read_text())["profile"] == "gray70"
    bins = _metrics(project)
    _assert_one_scale(bins)
    assert {"accuracy", "one_off_accuracy"} <= set(bins["bins"])
    predictions = pd.read_csv(project / "reports/predictions.csv")
    assert predictions["pred_bin"].isin([f"{lo}-{lo + 4}" for lo in range(0, 95, 5)] + ["95+"]).all()

    out = _run([*DVC, "exp", "run", "-S", "model=relu_regression"], project)
    assert "Running stage 'ingest'" not in out and "Running stage 'train'" in out
    regression = _metrics(project)
    _assert_one_scale(regression)
    assert "bins" not in regression

    names = _run([*DVC, "exp", "list", "--name-only"], project).split()
    assert len(names) == 2
    table = _run([*DVC, "exp", "show", "--csv"], project)
    assert "sigmoid_bins" in table and "relu_regression" in table and "age.mae" in table
    diff = _run([*DVC, "metrics", "diff", names[0], names[1]], project)
    assert "age.mae" in diff
