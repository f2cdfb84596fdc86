"""`dvc exp run` of a transfer family: the features stage runs once, a head-only change trains again
from the cached features without recomputing them, and a change of what they depend on (the seed
of a random base) makes them stale. VGG19 with weights=null on the synthetic project (1 epoch).
The face family end to end, from the pretrained stage (a stand-in package) to the metrics."""
import json

import numpy as np
import pytest
import yaml

from dvc_project import DVC, GIT, changed_stages
from dvc_project import run as _run

pytestmark = pytest.mark.slow


def test_features_are_computed_once_and_reused_by_head_only_experiments(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"] = "vgg19"
    params["models"]["vgg19"]["architecture"]["weights"] = None
    params["models"]["vgg19"]["features"] = "cached"  # what this test is about, whatever a user set
    params["evaluate"]["tta_flip"] = False
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    first = _run([*DVC, "repro"], project)
    assert "Running stage 'features'" in first and "Running stage 'train'" in first
    spec = (project / "data/interim/features.json").read_bytes()
    faces = np.load(project / "data/features/train_features.npy", mmap_mode="r")
    assert faces.dtype == np.float16 and faces.shape[1:] == (2, 2, 512)
    _run([*GIT, "add", "-A"], project)
    _run([*GIT, "commit", "-qm", "vgg19"], project)

    head_only = _run([*DVC, "exp", "run", "-S", "models.vgg19.learning_rate=0.0005"], project)
    assert "Running stage 'check_params'" in head_only and "Running stage 'train'" in head_only
    assert "Running stage 'features'" not in head_only  # the spec is byte for byte the same
    assert (project / "data/interim/features.json").read_bytes() == spec

    # another random base (the seed): check_params writes another spec, and features must re-run
    params["train"]["seed"] = 7
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run([*DVC, "repro", "check_params"], project)
    assert b'"seed": 7' in (project / "data/interim/features.json").read_bytes()
    assert "features" in changed_stages(project)


def test_the_face_family_runs_from_the_pretrained_stage_to_its_cost_and_then_runs_nothing(project):
    """face_mobilenet with its last pair trained from the cache (random base: the stand-in package
    holds no real network): the pretrained stage keeps the package's listed files, the features
    are cut below the pair, and the metrics count the feature pass beside training."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"] = "face_mobilenet"
    recipe = params["models"]["face_mobilenet"]
    recipe.update(features="cached", cached_top=["conv_dw_13", "conv_pw_13"])
    recipe["architecture"]["weights"] = None
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    first = _run([*DVC, "repro"], project)
    for stage in ("pretrained", "features", "train", "evaluate"):
        assert f"Running stage '{stage}'" in first
    kept = project / params["paths"]["pretrained"]
    assert (kept / "models" / "faceres.json").is_file() and not (kept / "models" / "other.bin").exists()
    assert json.loads((kept / "source.json").read_text())["integrity"] == params["pretrained"]["integrity"]
    faces = np.load(project / "data/features/train_features.npy", mmap_mode="r")
    assert faces.shape[1:] == (7, 7, 1024)  # the input of conv_dw_13
    cost = json.loads((project / "reports/metrics.json").read_text())["cost"]
    assert cost["features_tflop"] > 0 and cost["train_tflop"] > 0
    # each rounded to 4 decimals in metrics.json, the total from the unrounded two
    assert cost["total_tflop"] == pytest.approx(cost["features_tflop"] + cost["train_tflop"], abs=1.5e-4)
    card = (project / params["paths"]["model_card"]).read_text()
    assert "Trained here: the base's layers conv_dw_13, conv_pw_13 (from the features cache)" in card
    assert "Running stage" not in _run([*DVC, "repro"], project)  # nothing fetched or run again


def test_a_model_trained_from_images_needs_no_features(project):
    out = _run([*DVC, "repro", "features"], project)
    assert "Running stage 'features'" in out
    assert sorted(p.name for p in (project / "data/features").iterdir()) == ["spec.json"]
