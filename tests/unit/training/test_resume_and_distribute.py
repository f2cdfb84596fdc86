"""Long runs survive interruption, and training runs under tf.distribute strategies: each run in
its own process (a killed run must really die; logical devices must be set before TensorFlow
starts). Synthetic data, loopback only, every process bounded in time."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from locations import HELPERS

pytestmark = pytest.mark.slow
JOB = HELPERS / "train_job.py"


def _job(out, *options, env=None, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, str(JOB), str(out), *options], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _ok(result):
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_a_run_killed_after_epoch_1_of_3_resumes_and_ends_with_the_same_model(tmp_path):
    slow = ("--epoch-seconds", "3")  # every epoch >= 3 s: the time is mostly known
    _ok(_job(tmp_path / "whole", *slow))
    killed = _job(tmp_path / "resumed", "--kill-after-epoch", "1", *slow)
    assert killed.returncode == 3 and not (tmp_path / "resumed" / "model.keras").exists()
    assert (tmp_path / "resumed" / "backup" / "train" / "latest.weights.h5").is_file()
    _ok(_job(tmp_path / "resumed", *slow))
    whole = np.load(tmp_path / "whole" / "predictions.npy")
    resumed = np.load(tmp_path / "resumed" / "predictions.npy")
    assert np.array_equal(whole, resumed)  # bit for bit: order, augmentation, mixup, optimizer
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["resumed"] is True and summary["epochs_run"] == 3
    # the training cost counts the epochs of the killed process too: the same as uninterrupted
    uninterrupted = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["train_tflop"] == uninterrupted["train_tflop"] > 0
    # the time of every epoch, the one before the kill included (not only the resumed two)
    whole_seconds = json.loads((tmp_path / "whole" / "summary.json").read_text())["train_seconds"]
    assert summary["train_seconds"] >= 9.0 and summary["train_seconds"] >= 0.85 * whole_seconds
    assert abs(summary["train_images_per_second"] - 40 * 3 / summary["train_seconds"]) < 0.2
    from agegender.evaluation.model_card import model_section
    from agegender.params import parse_params
    from agegender.training.summary import TrainSummary

    card = "\n".join(model_section(parse_params({"data": {"source": "x"}}),
                                    TrainSummary.read(tmp_path / "resumed" / "summary.json")))
    assert f"Trained 3 epochs in {summary['train_seconds']} s" in card
    assert not (tmp_path / "resumed" / "backup").exists()  # a finished run leaves no backup
    loss = (tmp_path / "resumed" / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text()
    assert [line.split("\t")[0] for line in loss.splitlines()[1:]] == ["0", "1", "2"]


def test_weight_averaging_resumes_to_the_same_average(tmp_path):
    """ema: the average is optimizer state, kept in the backup: killed after epoch 1 and resumed,
    the run ends with the same averaged weights as uninterrupted, bit for bit."""
    _ok(_job(tmp_path / "whole", "--ema", "0.9"))
    assert _job(tmp_path / "resumed", "--ema", "0.9", "--kill-after-epoch", "1").returncode == 3
    _ok(_job(tmp_path / "resumed", "--ema", "0.9"))
    plain = _ok(_job(tmp_path / "plain"))  # without the average: other weights
    assert plain.returncode == 0
    whole, resumed, raw = (np.load(tmp_path / run / "weights.npy") for run in ("whole", "resumed", "plain"))
    assert np.array_equal(whole, resumed) and not np.array_equal(whole, raw)


def test_progressive_resizing_resumes_at_the_size_of_each_epoch(tmp_path):
    """Killed after epoch 1 of 2 at 40 px and resumed, the run trains epoch 2 at 40 px and epoch 3
    at 72 px as uninterrupted: the same model bit for bit, and another than without resizing."""
    _ok(_job(tmp_path / "whole", "--progressive", "40:2"))
    assert _job(tmp_path / "resumed", "--progressive", "40:2", "--kill-after-epoch", "1").returncode == 3
    _ok(_job(tmp_path / "resumed", "--progressive", "40:2"))
    _ok(_job(tmp_path / "plain"))
    whole, resumed, plain = (np.load(tmp_path / run / "predictions.npy") for run in ("whole", "resumed", "plain"))
    assert np.array_equal(whole, resumed) and not np.array_equal(whole, plain)
    cost = {run: json.loads((tmp_path / run / "summary.json").read_text())["train_tflop"]
            for run in ("whole", "resumed", "plain")}
    assert cost["whole"] == cost["resumed"] < cost["plain"]


def test_a_backup_of_other_settings_is_not_resumed(tmp_path):
    killed = _job(tmp_path / "run", "--kill-after-epoch", "1")
    assert killed.returncode == 3
    result = _ok(_job(tmp_path / "run", "--epochs", "2"))  # another recipe: start over
    assert "holds the backup of another run" in result.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["resumed"] is False


def test_mirrored_over_two_logical_cpus_trains_a_model_evaluate_reads(tmp_path):
    _ok(_job(tmp_path / "mirrored", "--strategy", "mirrored", "--logical-cpus", "2",
             "--epochs", "1"))
    summary = json.loads((tmp_path / "mirrored" / "summary.json").read_text())
    assert summary["strategy"] == "MirroredStrategy (2 replicas)"
    import pandas as pd

    from agegender.evaluation.scoring import evaluate_model
    from agegender.serving.saved import load_model

    model, info = load_model(tmp_path / "mirrored" / "model.keras")
    sys.path.insert(0, str(JOB.parent))
    from train_job import synthetic

    images, labels = synthetic(8, 2)
    table = pd.DataFrame({"file": [f"{i}.jpg" for i in range(8)], "age": labels[:, 0],
                          "gender": labels[:, 1], "race": labels[:, 2]})
    df, metrics, _ = evaluate_model(model, info.age_output, images, table, 4, True, 1)
    assert len(df) == 8 and metrics["age"]["mae"] >= 0
    np.testing.assert_allclose(model.predict(images, verbose=0)["age"],
                               np.load(tmp_path / "mirrored" / "predictions.npy"), atol=1e-4)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_local_workers_train_one_epoch_and_agree_on_the_weights(tmp_path):
    """Trainable weights agree bit for bit (gradients are all-reduced); BatchNormalization's
    moving statistics stay each worker's own, and the chief's model is the one saved."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_CONFIG": json.dumps(tf_config)}
        procs.append(subprocess.Popen(
            [sys.executable, str(JOB), str(tmp_path / f"worker{i}"), "--strategy", "multi_worker",
             "--epochs", "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    a, b = (np.load(tmp_path / f"worker{i}" / "weights.npy") for i in range(2))
    assert a.shape == b.shape and np.array_equal(a, b)
    assert not (tmp_path / "worker0" / "backup").exists()
    summary = json.loads((tmp_path / "worker0" / "summary.json").read_text())
    assert summary["strategy"] == "MultiWorkerMirroredStrategy (2 replicas)"
