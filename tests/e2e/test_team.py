"""Working as a team: a DVC remote a fresh clone pulls from, sweeps through DVC's experiment
queue, and scoring on a labelled set of your own (external/dvc.yaml). Small synthetic data, 1 epoch."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil  # a dependency of DVC
import pytest
import yaml

from dvc_project import DVC, GIT, PINNED, assert_one_copy
from dvc_project import env as _env
from dvc_project import run as _run
from synthetic import face, make_labelled

pytestmark = pytest.mark.slow


def test_a_clone_pulls_from_the_remote_and_reproduces_nothing(trained_copy, tmp_path):
    """The raw images under DVC (`dvc add`, a dep of ingest), a local-folder remote: repro and push
    in one clone (a trained one: conftest.py's trained_project); a fresh `git clone` pulls, is up to
    date, and predicts without training."""
    project, raw = trained_copy, "data/raw/UTKFace"
    _run([*GIT, "rm", "-r", "-q", "--cached", raw], project)  # the fixture committed it to git
    _run([*DVC, "add", raw], project)
    remote = tmp_path / "remote"
    _run([*DVC, "remote", "add", "-d", "shared", str(remote)], project)
    _run([*DVC, "repro"], project)
    _run([*GIT, "add", "-A"], project)
    _run([*GIT, "commit", "-qm", "run"], project)
    pushed = _run([*DVC, "push"], project)
    assert "pushed" in pushed

    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / raw).exists() and not (clone / "models/model.keras").exists()
    # plain `dvc pull` also wants kfold/ and external/ outputs, which were never run: it would
    # fail on them ("No file hash info found"); --allow-missing skips those, and status checks
    # that the main pipeline's outputs and the raw images all came
    _run([*DVC, "pull", "--allow-missing"], clone)
    # the pretrained stage's files too: a team member offline gets the weights from the remote
    for path in (raw, "data/interim/labels.csv", "data/processed/test_images.npy",
                 "models/pretrained/human-models/models/faceres.json",
                 "models/model.keras", "reports/train", "reports/predictions.csv", "reports/figures"):
        assert (clone / path).exists(), path
    status = _run([*DVC, "status", "dvc.yaml", f"{raw}.dvc"], clone)
    assert "Data and pipelines are up to date" in status, status
    assert_one_copy(clone)  # what dvc pull checked out is linked to the clone's cache, not copied
    again = _run([*DVC, "repro"], clone)
    assert "Running stage" not in again
    chip = sorted((clone / raw).glob("*.jpg.chip.jpg"))[0]
    out = _run([sys.executable, "-m", "stages.predict", str(chip), "--no-detect",
                "--format", "json"], clone)
    record = json.JSONDecoder().raw_decode(out[out.index("["):])[0][0]  # stderr follows stdout
    assert record["error"] is None and 0 <= record["age"] <= 120 and record["gender"] in ("male", "female")


def _queue_workers(project) -> list:
    """The `dvc exp queue-worker` processes running in ``project``."""
    here = os.path.realpath(project)
    return [proc for proc in psutil.process_iter(["cmdline", "cwd"])
            if "queue-worker" in (proc.info["cmdline"] or []) and proc.info["cwd"] == here]


def _wait_for_queue(cwd, timeout_s: float, log) -> str:
    """Wait until the queue's worker, which stops by itself once the queue is empty, has ended;
    return `dvc queue status` then. Watches the worker's process, not `dvc queue status` (seconds
    of CPU a call, taken from the experiments). Fails at ``timeout_s``, or when no worker is there
    a minute after `dvc queue start` (it could not start: ``log`` says why)."""
    start = time.monotonic()
    while not (workers := _queue_workers(cwd)):
        assert time.monotonic() - start < 60, f"no queue worker:\n{log.read_text()}"
        time.sleep(0.5)
    _, alive = psutil.wait_procs(workers, timeout=timeout_s)
    assert not alive, f"queue still busy after {timeout_s} s:\n{_run([*DVC, 'queue', 'status'], cwd)}"
    return _run([*DVC, "queue", "status"], cwd)


def test_a_grid_runs_through_the_queue(trained_copy):
    """`dvc exp run --queue -S` with a grid of two training seeds, `dvc queue start -j 1`, then
    each experiment's metrics and the param that differs in `dvc exp show --only-changed`. The
    queue starts from the committed trained project (conftest.py's trained_project): the seed it
    was trained with has nothing to run, the other trains in the queue's workspace."""
    project = trained_copy
    _run([*GIT, "add", "-A"], project)
    _run([*GIT, "commit", "-qm", "trained"], project)
    seed = PINNED["train.seed"]  # what the trained project was trained with
    queued = _run([*DVC, "exp", "run", "--queue", "-S", f"train.seed={seed},{seed + 1}"], project)
    assert queued.count("Queued experiment") == 2, queued
    try:
        # returns at once; the worker it forks keeps the standard streams it was given, so they go
        # to a file, not to a pipe that would stay open until the worker ends
        # (the worker runs the `dvc` on PATH: the venv's, as in _run)
        log = project.parent / "queue_start.log"
        with open(log, "w") as out:
            start = subprocess.run([*DVC, "queue", "start", "-j", "1"], cwd=project, env=_env(),
                                   stdout=out, stderr=subprocess.STDOUT, timeout=120)
        assert start.returncode == 0, log.read_text()
        status = _wait_for_queue(project, timeout_s=900, log=log)
    finally:  # whatever happened, leave no worker behind
        subprocess.run([*DVC, "queue", "stop", "--kill"], cwd=project, env=_env(), capture_output=True)
    assert status.count("Success") == 2, status
    rows = json.loads(_run([*DVC, "exp", "show", "--json", "--only-changed"], project))
    exps = [e for row in rows for e in (row.get("experiments") or [])]
    found = {}
    for exp in exps:
        for rev in exp.get("revs") or []:
            data = rev.get("data") or {}
            found[data["params"]["params.yaml"]["data"]["train"]["seed"]] = \
                data["metrics"]["reports/metrics.json"]["data"]
    assert set(found) == {seed, seed + 1}, rows
    for metrics in found.values():
        assert 0 <= metrics["age"]["mae"] < 120 and 0 <= metrics["gender"]["accuracy"] <= 1
    table = _run([*DVC, "exp", "show", "--csv", "--only-changed"], project)
    header = table.splitlines()[0].split(",")
    assert "train.seed" in header and "model" not in header  # only what differs
    names = _run([*DVC, "exp", "list", "--name-only"], project).split()
    assert len(names) == 2
    # the experiment with the committed seed had nothing to run; the other trained and evaluated
    logs = [_run([*DVC, "queue", "logs", name], project) for name in names]
    trained = [log for log in logs if "Running stage 'train'" in log]
    assert len(trained) == 1 and "Running stage 'evaluate'" in trained[0], logs
    assert sum("Running stage 'evaluate'" in log for log in logs) == 1, logs
    diff = _run([*DVC, "metrics", "diff", names[0], names[1]], project)
    assert "age.mae" in diff
    assert "Worker status: 0 active, 0 idle" in _run([*DVC, "queue", "status"], project)


def test_evaluate_external_scores_a_labelled_folder(trained_project, trained_copy):
    """`dvc repro external/dvc.yaml` (never run by plain `dvc repro`) scores the trained model
    (conftest.py's trained_project) on a labelled folder of crops; its metrics file sits beside the
    test metrics. Then `dvc repro export/dvc.yaml` exports the same model as TensorFlow Lite."""
    project = trained_copy
    folder = project / "data" / "external"
    make_labelled(folder, n=8, seed=5, race=False)
    face(30, 0, np.random.default_rng(0)).save(folder / "img" / "no_age.jpg")
    with open(folder / "labels.csv", "a") as f:
        f.write("img/missing.jpg,30,male\nimg/no_age.jpg,abc,male\n")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["external"]["detect"] = False  # synthetic faces are crops, not photos a detector finds
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    plain = _run([*DVC, "repro"], project)
    for run in (trained_project.repro_output, plain):  # the run from scratch, and this one
        assert "evaluate_external" not in run and "export_tflite" not in run
    assert not (project / "reports/external").exists()
    out = _run([*DVC, "repro", "external/dvc.yaml"], project)  # reuses the trained model
    assert "Running stage 'train'" not in out
    assert "Running stage 'external/dvc.yaml:evaluate_external'" in out
    metrics = json.loads((project / "reports/external/metrics.json").read_text())
    assert metrics["images"] == {"listed": 10, "usable": 8, "scored": 8, "no_face": 0, "failed": 0,
                                 "skipped": 2, "skipped_by_reason": {"bad_label": 1, "missing_file": 1}}
    assert 0 <= metrics["age"]["mae"] < 120 and 0 <= metrics["gender"]["accuracy"] <= 1
    predictions = pd.read_csv(project / "reports/external/predictions.csv")
    assert len(predictions) == 8 and (predictions["race"] == -1).all()
    skipped = json.loads((project / "reports/external/skipped.json").read_text())
    assert {s["reason"] for s in skipped} == {"bad_label", "missing_file"}
    # not a declared metric (a plain run would warn about it until it exists): read by name
    shown = _run([*DVC, "metrics", "show", "reports/metrics.json", "reports/external/metrics.json"],
                 project)
    assert "reports/external/metrics.json" in shown and "reports/metrics.json" in shown
    assert "failed to load" not in shown
    assert "Running stage" not in _run([*DVC, "repro", "external/dvc.yaml"], project)

    # the other optional pipeline on the same trained model (a run of its own would train again):
    # `dvc repro export/dvc.yaml` writes the TFLite model, plain `dvc repro` never did
    assert not (project / "models" / "model.tflite").exists()
    out = _run([*DVC, "repro", "export/dvc.yaml"], project)
    assert "Running stage 'train'" not in out
    assert "Running stage 'export/dvc.yaml:export_tflite'" in out
    from agegender.serving.export import TFLiteModel

    lite = TFLiteModel(project / "models" / "model.tflite")
    assert lite.info.family == "compact" and lite.info.precision == "float32"
    crops = np.stack([np.asarray(face(30, 0, np.random.default_rng(i)).resize((72, 72))) for i in range(4)])
    assert lite.predict(crops)["pred_age"].shape == (4,)
    assert "Running stage" not in _run([*DVC, "repro", "export/dvc.yaml"], project)
