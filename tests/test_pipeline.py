"""End to end: `dvc repro` of the real dvc.yaml on a small synthetic UTKFace folder (1 epoch)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from synthetic import make_utkface

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture
def project(tmp_path):
    """A copy of this project (code, dvc.yaml, params.yaml) in a fresh git + DVC repo."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for item in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / item, proj / item)
    shutil.copytree(ROOT / "stages", proj / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    make_utkface(proj / "data" / "raw" / "UTKFace", n=80, seed=1)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["data"]["source"] = "data/raw/UTKFace"
    params["train"]["epochs"] = 1
    for hp in params["models"].values():
        hp["epochs"] = 1
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], proj)
    _run([sys.executable, "-m", "dvc", "init", "-q"], proj)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], proj)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], proj)
    return proj


def test_dvc_repro_end_to_end(project):
    out = _run([sys.executable, "-m", "dvc", "repro"], project)
    for stage in ("ingest", "preprocess", "train", "evaluate", "plot"):
        assert f"Running stage '{stage}'" in out
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert 0 <= metrics["age"]["mae"] < 120 and 0 <= metrics["gender"]["accuracy"] <= 1
    predictions = pd.read_csv(project / "reports/predictions.csv")
    assert len(predictions) == metrics["test_images"] > 0
    quality = json.loads((project / "reports/data_quality.json").read_text())
    assert set(quality["skipped_by_reason"]) == {"malformed_name", "out_of_range",
                                                 "unreadable_image", "duplicate"}
    for figure in ("learning_curves", "age_scatter", "gender_confusion", "mae_by_age_group"):
        assert (project / "reports/figures" / f"{figure}.png").stat().st_size > 1000
    assert (project / "models/model.keras").is_file()
    # nothing changed: a second repro runs no stage
    again = _run([sys.executable, "-m", "dvc", "repro"], project)
    assert "Running stage" not in again
    dag = _run([sys.executable, "-m", "dvc", "dag", "--dot"], project)
    for a, b in [("ingest", "preprocess"), ("preprocess", "train"), ("train", "evaluate"),
                 ("evaluate", "plot")]:
        assert f'"{a}" -> "{b}"' in dag


def _metrics(project):
    return json.loads((project / "reports/metrics.json").read_text())


def _assert_one_scale(metrics):
    """Every variant reports the same metrics (bins models add their own-bin accuracies)."""
    assert {"mae", "rmse", "cs5", "five_year_accuracy"} <= set(metrics["age"])
    assert {"accuracy", "f1", "roc_auc"} <= set(metrics["gender"])
    assert {"parameters", "train_seconds", "inference_images_per_second"} <= set(metrics["cost"])
    assert metrics["cost"]["parameters"] > 0 and metrics["cost"]["train_seconds"] > 0


def test_exp_run_switches_between_a_bins_and_a_regression_variant(project):
    """`dvc exp run -S model=NAME` for a bins variant then a regression variant: the image
    profile follows the model, ingest is not re-run, both experiments' metrics compare."""
    dvc = [sys.executable, "-m", "dvc"]
    out = _run([*dvc, "exp", "run", "-S", "model=sigmoid_bins"], project)
    assert "Running stage 'train'" in out
    assert json.loads((project / "data/processed/profile.json").read_text())["profile"] == "gray70"
    bins = _metrics(project)
    _assert_one_scale(bins)
    assert {"accuracy", "one_off_accuracy"} <= set(bins["bins"])
    predictions = pd.read_csv(project / "reports/predictions.csv")
    assert predictions["pred_bin"].isin([f"{lo}-{lo + 4}" for lo in range(0, 95, 5)] + ["95+"]).all()

    out = _run([*dvc, "exp", "run", "-S", "model=relu_regression"], project)
    assert "Running stage 'ingest'" not in out and "Running stage 'train'" in out
    regression = _metrics(project)
    _assert_one_scale(regression)
    assert "bins" not in regression

    names = _run([*dvc, "exp", "list", "--name-only"], project).split()
    assert len(names) == 2
    table = _run([*dvc, "exp", "show", "--csv"], project)
    assert "sigmoid_bins" in table and "relu_regression" in table and "age.mae" in table
    diff = _run([*dvc, "metrics", "diff", names[0], names[1]], project)
    assert "age.mae" in diff
