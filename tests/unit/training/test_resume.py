"""Long runs survive interruption: a run killed after an epoch resumes from its backup and ends
with the model an uninterrupted run makes, with weight averaging and progressive resizing too; a
backup of other settings is not resumed. Each run in its own process (tests/helpers/train_job.py:
a killed run must really die). Synthetic data, every process bounded in time."""
import json

import numpy as np
import pytest

from train_job import run_job as _job
from train_job import succeeded as _ok
from numerics import same_run

pytestmark = pytest.mark.slow


def test_a_run_killed_after_epoch_1_of_3_resumes_and_ends_with_the_same_model(tmp_path):
    slow = ("--epoch-seconds", "3")  # every epoch >= 3 s: the time is mostly known
    _ok(_job(tmp_path / "whole", *slow))
    killed = _job(tmp_path / "resumed", "--kill-after-epoch", "1", *slow)
    assert killed.returncode == 3 and not (tmp_path / "resumed" / "model.keras").exists()
    assert (tmp_path / "resumed" / "backup" / "train" / "latest.weights.h5").is_file()
    _ok(_job(tmp_path / "resumed", *slow))
    whole = np.load(tmp_path / "whole" / "predictions.npy")
    resumed = np.load(tmp_path / "resumed" / "predictions.npy")
    assert same_run(whole, resumed)  # order, augmentation, mixup, optimizer (tests/helpers/numerics.py)
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

    card = "\n".join(model_section(parse_params({"data": {"source": "x"}, "model": "compact"}),
                                    TrainSummary.read(tmp_path / "resumed" / "summary.json")))
    assert f"Trained 3 epochs in {summary['train_seconds']} s" in card
    assert not (tmp_path / "resumed" / "backup").exists()  # a finished run leaves no backup
    loss = (tmp_path / "resumed" / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text()
    assert [line.split("\t")[0] for line in loss.splitlines()[1:]] == ["0", "1", "2"]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The folder of a run without weight averaging or resizing, uninterrupted: what the two
    tests below compare their runs with (one job for both)."""
    out = tmp_path_factory.mktemp("resume") / "plain"
    _ok(_job(out))
    return out


def test_weight_averaging_resumes_to_the_same_average(tmp_path, plain):
    """ema: the average is optimizer state, kept in the backup: killed after epoch 1 and resumed,
    the run ends with the same averaged weights as uninterrupted (up to float32 rounding)."""
    _ok(_job(tmp_path / "whole", "--ema", "0.9"))
    assert _job(tmp_path / "resumed", "--ema", "0.9", "--kill-after-epoch", "1").returncode == 3
    _ok(_job(tmp_path / "resumed", "--ema", "0.9"))
    whole, resumed = (np.load(tmp_path / run / "weights.npy") for run in ("whole", "resumed"))
    raw = np.load(plain / "weights.npy")  # without the average: other weights
    assert same_run(whole, resumed) and not same_run(whole, raw)


def test_progressive_resizing_resumes_at_the_size_of_each_epoch(tmp_path, plain):
    """Killed after epoch 1 of 2 at 40 px and resumed, the run trains epoch 2 at 40 px and epoch 3
    at 72 px as uninterrupted: the same model (up to float32 rounding), and another than without resizing."""
    _ok(_job(tmp_path / "whole", "--progressive", "40:2"))
    assert _job(tmp_path / "resumed", "--progressive", "40:2", "--kill-after-epoch", "1").returncode == 3
    _ok(_job(tmp_path / "resumed", "--progressive", "40:2"))
    runs = {"whole": tmp_path / "whole", "resumed": tmp_path / "resumed", "plain": plain}
    whole, resumed, unresized = (np.load(folder / "predictions.npy") for folder in runs.values())
    assert same_run(whole, resumed) and not same_run(whole, unresized)
    cost = {run: json.loads((folder / "summary.json").read_text())["train_tflop"] for run, folder in runs.items()}
    assert cost["whole"] == cost["resumed"] < cost["plain"]


def test_a_backup_of_other_settings_is_not_resumed(tmp_path):
    killed = _job(tmp_path / "run", "--kill-after-epoch", "1")
    assert killed.returncode == 3
    result = _ok(_job(tmp_path / "run", "--epochs", "2"))  # another recipe: start over
    assert "holds the backup of another run" in result.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["resumed"] is False
