"""Training under tf.distribute strategies: MirroredStrategy over logical CPUs, and two local
workers (MultiWorkerMirroredStrategy over loopback). Each run in its own process
(tests/helpers/train_job.py: logical devices must be set before TensorFlow starts). Synthetic
data, loopback only, every process bounded in time."""
import json
import socket
import subprocess

import numpy as np
import pytest

from train_job import job_command, job_env
from train_job import run_job as _job
from train_job import succeeded as _ok
from train_job import synthetic

pytestmark = pytest.mark.slow


def test_mirrored_over_two_logical_cpus_trains_a_model_evaluate_reads(tmp_path):
    _ok(_job(tmp_path / "mirrored", "--strategy", "mirrored", "--logical-cpus", "2",
             "--epochs", "1"))
    summary = json.loads((tmp_path / "mirrored" / "summary.json").read_text())
    assert summary["strategy"] == "MirroredStrategy (2 replicas)"
    import pandas as pd

    from agegender.evaluation.scoring import evaluate_model
    from agegender.serving.saved import load_model

    model, info = load_model(tmp_path / "mirrored" / "model.keras")
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
        procs.append(subprocess.Popen(  # both at once: each waits for the other to join
            job_command(tmp_path / f"worker{i}", "--strategy", "multi_worker", "--epochs", "1"),
            env=job_env({"TF_CONFIG": json.dumps(tf_config)}), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
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
