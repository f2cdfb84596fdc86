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
from test_plot import declared_figures

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # each test runs DVC pipelines that train


def _env():
    """This interpreter's bin folder first on PATH (DVC runs `python`, queue workers `dvc`)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(cmd, cwd):
    result = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture
def project(tmp_path):
    """A copy of this project (code, dvc.yaml, params.yaml) in a fresh git + DVC repo."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for item in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / item, proj / item)
    for package in ("stages", "agegender"):  # `python -m stages.X` in proj imports proj's copy
        shutil.copytree(ROOT / package, proj / package, ignore=shutil.ignore_patterns("__pycache__"))
    for pipeline in ("kfold", "external"):
        (proj / pipeline).mkdir()
        shutil.copy(ROOT / pipeline / "dvc.yaml", proj / pipeline / "dvc.yaml")
    (proj / "data" / "extra").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "extra" / "README.md", proj / "data" / "extra" / "README.md")
    make_utkface(proj / "data" / "raw" / "UTKFace", n=80, seed=1)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["data"]["source"] = "data/raw/UTKFace"
    params["evaluate"]["breakdown_min_group_size"] = 1  # 8 test faces: let every group count
    for hp in params["models"].values():
        hp["epochs"] = 1
    params["kfold"]["n_folds"] = 2
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], proj)
    _run([sys.executable, "-m", "dvc", "init", "-q"], proj)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], proj)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], proj)
    return proj


def test_dvc_repro_end_to_end(project):
    out = _run([sys.executable, "-m", "dvc", "repro"], project)
    for stage in ("ingest", "preprocess", "train", "evaluate", "plot", "model_card"):
        assert f"Running stage '{stage}'" in out
    assert "kfold" not in out and not (project / "kfold" / "metrics.json").exists()
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert 0 <= metrics["age"]["mae"] < 120 and 0 <= metrics["gender"]["accuracy"] <= 1
    predictions = pd.read_csv(project / "reports/predictions.csv")
    assert len(predictions) == metrics["test_images"] > 0
    quality = json.loads((project / "reports/data_quality.json").read_text())
    assert set(quality["skipped_by_reason"]) == {"malformed_name", "out_of_range",
                                                 "unreadable_image", "duplicate"}
    assert set(metrics["fairness"]) == {"race", "gender", "age_group", "race_x_gender"}
    assert metrics["fairness"]["race"]["mae_gap"] >= 0
    breakdown = json.loads((project / "reports/breakdown.json").read_text())
    assert sum(row["n"] for row in breakdown["race"]["groups"]) == len(predictions)
    for figure in declared_figures(project / "dvc.yaml"):  # every declared figure is drawn
        assert (project / figure).stat().st_size > 1000, figure
    card = (project / "reports/model_card.md").read_text()
    for heading in ("## Data", "## Split", "## Model and parameters", "## Headline metrics",
                    "## Fairness breakdown", "## Known limitations"):
        assert heading in card
    # DVC renders every declared plot (images and data plots) without a load error
    shown = _run([sys.executable, "-m", "dvc", "plots", "show", "-o", "plots_html"], project)
    assert "failed to load" not in shown
    html = (project / "plots_html" / "index.html").read_text()
    for figure in declared_figures(project / "dvc.yaml"):
        assert figure.replace("/", "_") in html, figure
    assert (project / "models/model.keras").is_file()
    # nothing changed: a second repro runs no stage
    again = _run([sys.executable, "-m", "dvc", "repro"], project)
    assert "Running stage" not in again
    dag = _run([sys.executable, "-m", "dvc", "dag", "--dot"], project)
    for a, b in [("ingest", "preprocess"), ("preprocess", "train"), ("train", "evaluate"),
                 ("evaluate", "plot"), ("evaluate", "model_card")]:
        assert f'"{a}" -> "{b}"' in dag

    # an edit to the age bins (which stratify the split and score every model) is seen by every
    # stage that runs that code: dvc.yaml declares package folders, not hand-picked files
    bins = project / "agegender" / "data" / "bins.py"
    bins.write_text(bins.read_text() + "\n# edited\n")
    status = _run([sys.executable, "-m", "dvc", "status"], project)
    changed = {line.rstrip(":").strip() for line in status.splitlines()
               if line.endswith(":") and not line.startswith("\t")}
    assert {"ingest", "evaluate", "plot"} <= changed, status


def test_kfold_is_a_separate_pipeline(project):
    """`dvc repro kfold/dvc.yaml` runs ingest, preprocess and the k-fold stages, not train."""
    out = _run([sys.executable, "-m", "dvc", "repro", "kfold/dvc.yaml"], project)
    for stage in ("ingest", "preprocess", "kfold/dvc.yaml:cv", "kfold/dvc.yaml:aggregate"):
        assert f"Running stage '{stage}'" in out
    assert "Running stage 'train'" not in out and not (project / "models").exists()
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
    shown = _run([sys.executable, "-m", "dvc", "metrics", "show", "kfold/metrics.json"], project)
    assert "mean.age.mae" in shown


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
