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
