import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from synthetic import make_utkface  # noqa: E402


@pytest.fixture
def utk_dir(tmp_path):
    """A synthetic UTKFace folder with the real archive's defects; returns (folder, written)."""
    folder = tmp_path / "UTKFace"
    return folder, make_utkface(folder, n=60, seed=0)
