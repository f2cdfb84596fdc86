import os
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))  # synthetic data, DVC project, fakes
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from synthetic import make_utkface  # noqa: E402


@pytest.fixture
def utk_dir(tmp_path):
    """A synthetic UTKFace folder with the real archive's defects; returns (folder, written)."""
    folder = tmp_path / "UTKFace"
    return folder, make_utkface(folder, n=60, seed=0)


@pytest.fixture
def portrait():
    """A real photograph shipped inside matplotlib (Grace Hopper, public domain, US Navy): 512 x
    600 RGB, one face. Skips when the installed matplotlib lacks it."""
    try:
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).convert("RGB")
    except Exception as exc:  # pragma: no cover - depends on the installed matplotlib
        pytest.skip(f"matplotlib's sample photo is not available: {exc}")


@pytest.fixture
def project(tmp_path):
    """A copy of this project (code, dvc.yaml files, params.yaml) in a fresh git + DVC repo, on 80
    synthetic UTKFace images, 1 epoch, the default model and the project's own paths whatever this
    checkout's params.yaml sets (tests/helpers/dvc_project.py: PINNED)."""
    from dvc_project import make_project

    return make_project(tmp_path / "proj")


class Ran(NamedTuple):
    path: Path  # the project
    output: str  # what `dvc repro` printed


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> Ran:
    """A ``project`` on which `dvc repro` ran once, every stage of the default pipeline from scratch,
    and what that run printed; built once per test process for the tests that start from a trained
    project (each `dvc repro` of it costs half a minute). Shared: read it, never change it; a test
    that changes the project takes a ``trained_copy``."""
    from dvc_project import DVC, make_project, run

    project = make_project(tmp_path_factory.mktemp("trained") / "proj")
    return Ran(project, run([*DVC, "repro"], project))


@pytest.fixture
def trained_copy(trained_project, tmp_path) -> Path:
    """A copy of ``trained_project`` of this test's own, its outputs linked to its own cache."""
    from dvc_project import copy_project

    return copy_project(trained_project.path, tmp_path / "proj")
