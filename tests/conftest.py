import os
import sys
from pathlib import Path

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
