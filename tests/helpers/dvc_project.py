"""Helpers of the tests that run DVC in a copy of this project (the ``project`` fixture of
conftest.py builds the copy): the environment, running a command, reading ``dvc status``, and the
figures dvc.yaml declares. A plain module, so test modules share it without importing each other."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from agegender.evaluation import figures
from locations import ROOT
from project_params import set_key
from synthetic import make_utkface

DVC = [sys.executable, "-m", "dvc"]
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]

# What the end-to-end tests read, name or change, set in the copy's params.yaml whatever this
# checkout's holds (a user's own model, epochs, precision, paths or seeds): the default model, the
# project's layout of outputs (the paths the tests read), the seeds, and the values the tests then
# change (`-S models.compact.learning_rate=0.004`, evaluate.batch_size 128, train.seed 7)
PINNED = {
    "model": "compact",
    "data.source": "data/raw/UTKFace",
    "data.extra": "data/extra",
    "external.source": "data/external",
    "split.seed": 42,
    "train.seed": 42,
    "train.strategy": "auto",
    "evaluate.batch_size": 256,
    "evaluate.breakdown_min_group_size": 1,  # 8 test faces: let every group count
    "kfold.n_folds": 2,
    "models.compact.learning_rate": 0.002,
    **{f"paths.{key}": path for key, path in {
        "params_check": "data/interim/params.ok", "features_spec": "data/interim/features.json",
        "features": "data/features", "labels": "data/interim/labels.csv",
        "data_quality": "reports/data_quality.json", "arrays": "data/processed",
        "preprocess_faces": "reports/preprocess_faces.json", "model": "models/model.keras",
        "train_summary": "models/train_summary.json", "train_logs": "reports/train",
        "metrics": "reports/metrics.json", "predictions": "reports/predictions.csv",
        "breakdown": "reports/breakdown.json", "breakdown_csv": "reports/breakdown.csv",
        "figures": "reports/figures", "model_card": "reports/model_card.md", "kfold": "kfold",
        "external": "reports/external", "tflite": "models/model.tflite",
        "train_backup": ".train_backup"}.items()},
}


def env() -> dict:
    """This interpreter's bin folder first on PATH (DVC runs `python`, queue workers `dvc`)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def run(cmd, cwd, ok: bool = True) -> str:
    """Run ``cmd`` in ``cwd``; returns stdout + stderr. With ``ok`` (default) it must succeed,
    else it must fail."""
    result = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    failed = result.returncode != 0
    assert failed != ok, (f"{' '.join(map(str, cmd))} {'failed' if ok else 'succeeded'}:\n"
                          f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


def changed_stages(cwd, *targets: str) -> set[str]:
    """The stages `dvc status` reports as changed (of ``targets``, default dvc.yaml)."""
    status = run([*DVC, "status", *(targets or ["dvc.yaml"])], cwd)
    return {line.rstrip(":").strip() for line in status.splitlines()
            if line.endswith(":") and not line.startswith("\t")}


def declared_figures(dvc_yaml: Path = ROOT / "dvc.yaml") -> list[str]:
    """The figure files of the plot stage, under the folder dvc.yaml declares both as the stage's
    output and as plots (paths relative to the project, as params.yaml's ``paths`` give them)."""
    params = yaml.safe_load((dvc_yaml.parent / "params.yaml").read_text())
    folder = params["paths"]["figures"]
    return [f"{folder}/{figure.name}" for figure in figures.FIGURES]


def project_params(raw: dict) -> dict:
    """The copy's params: this checkout's ``raw`` with :data:`PINNED` set, and every family
    trained 1 epoch in the default precision (auto) without progressive resizing (a user's steps
    would not fit in 1 epoch)."""
    for key, value in PINNED.items():
        set_key(raw, key, value)
    for hp in raw["models"].values():
        hp["epochs"] = 1
        if "precision" in hp:
            hp["precision"] = "auto"
        hp.pop("progressive", None)
    return raw


def make_project(proj: Path) -> Path:
    """A copy of this project (code, dvc.yaml files, params.yaml) in a fresh git + DVC repo at
    ``proj``, on 80 synthetic UTKFace images, every family set to 1 epoch, with the values the
    end-to-end tests rely on (:data:`PINNED`)."""
    proj.mkdir()
    for item in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / item, proj / item)
    for package in ("stages", "agegender"):  # `python -m stages.X` in proj imports proj's copy
        shutil.copytree(ROOT / package, proj / package, ignore=shutil.ignore_patterns("__pycache__"))
    for pipeline in ("kfold", "external", "export"):
        (proj / pipeline).mkdir()
        shutil.copy(ROOT / pipeline / "dvc.yaml", proj / pipeline / "dvc.yaml")
    (proj / "data" / "extra").mkdir(parents=True)
    shutil.copy(ROOT / "data" / "extra" / "README.md", proj / "data" / "extra" / "README.md")
    make_utkface(proj / "data" / "raw" / "UTKFace", n=80, seed=1)
    params = project_params(yaml.safe_load((proj / "params.yaml").read_text()))
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], proj)
    run([*DVC, "init", "-q"], proj)
    run([*GIT, "add", "-A"], proj)
    run([*GIT, "commit", "-qm", "init"], proj)
    return proj
