import os
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))  # synthetic data, DVC project, fakes
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from synthetic import make_utkface  # noqa: E402


def pytest_collection_modifyitems(items):
    """The files of slow tests first, end-to-end ones ahead, the rest in their own order: with
    ``-n 2 --dist loadfile --no-loadscope-reorder`` (pytest.ini) xdist hands out whole files in
    this order, so the long files start at once and the many short ones even the two workers out
    at the end. (xdist's own order, most tests first, left a long end-to-end file for last, one
    worker idle meanwhile.)"""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item) -> int:
        if item.path not in slow_files:
            return 2
        return 0 if "e2e" in item.path.relative_to(item.config.rootpath).parts else 1

    items.sort(key=rank)  # stable: a file's tests keep their order


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


class TrainedProject(NamedTuple):
    path: Path  # the project's folder
    repro_output: str  # what its `dvc repro` printed
    files: dict  # path -> (size, mtime) of its files when the run ended (.dvc/tmp and .git aside)


def _files(project: Path) -> dict:
    """path -> (size, mtime_ns) of every file of ``project`` but DVC's scratch (.dvc/tmp) and git's
    own folder: what a test that changed the project would have changed."""
    files = {}
    for f in project.rglob("*"):
        name, stat = f.relative_to(project).as_posix(), f.lstat()
        if not f.is_dir() and not name.startswith((".git/", ".dvc/tmp/")):
            files[name] = (stat.st_size, stat.st_mtime_ns)
    return files


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> TrainedProject:
    """A ``project`` on which `dvc repro` ran once, every stage of the default pipeline from scratch,
    and what that run printed (``.path``, ``.repro_output``); built once per pytest-xdist worker
    (once in all with -n 0) for the tests that start from a trained project: each `dvc repro` of it
    costs about 50 s. Shared: read it (its files; DVC reading it, as assert_one_copy does), change
    nothing in it; a test that changes the project takes a ``trained_copy``."""
    from dvc_project import DVC, make_project, run

    project = make_project(tmp_path_factory.mktemp("trained") / "proj")
    output = run([*DVC, "repro"], project)
    return TrainedProject(project, output, _files(project))


@pytest.fixture
def trained_copy(trained_project, tmp_path) -> Path:
    """This test's own copy of ``trained_project`` (at tmp_path / "trained"), its outputs linked
    to its own cache; fails first if an earlier test changed the shared project."""
    from dvc_project import copy_project

    now, then = _files(trained_project.path), trained_project.files
    changed = {name for name in now.keys() | then.keys() if now.get(name) != then.get(name)}
    assert not changed, f"a test changed the shared trained_project: {sorted(changed)[:5]}"
    return copy_project(trained_project.path, tmp_path / "trained")
