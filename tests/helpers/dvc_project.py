"""Helpers of the tests that run DVC in a copy of this project (conftest.py's ``project`` fixture
builds the copy, ``trained_copy`` copies a trained one with :func:`copy_project`): the environment,
running a command, reading ``dvc status``, a command's output free of noise, the figures dvc.yaml
declares, and the outputs' links to the cache. A plain module, so test modules share it without
importing each other."""
import configparser
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from agegender.evaluation import figures
from agegender.pretrained.fetch import sri_sha512
from fake_package import make_package, package_params
from locations import ROOT
from project_params import set_key
from synthetic import make_utkface

DVC = [sys.executable, "-m", "dvc"]
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]

# What the end-to-end tests read, name or change, set in the copy's params.yaml whatever this
# checkout's holds (a user's own model, epochs, precision, paths or seeds): the model they train
# (`compact`, small and quick at 72 px; the default's own pipeline, face_mobilenet with its features
# stage, runs in tests/e2e/test_features_pipeline.py on a random base), the project's layout of
# outputs (the paths the tests read), the seeds, and the values the tests then change
# (`-S models.compact.learning_rate=0.004`, evaluate.batch_size 128, train.seed 7)
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
        "train_backup": ".train_backup", "pretrained": "models/pretrained/human-models"}.items()},
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


def copy_project(src: Path, dst: Path) -> Path:
    """A copy of the project ``src`` (git repo, DVC cache, workspace) at ``dst``, every cached output
    linked again to the copy's own cache, as `dvc checkout` links them (a plain copy of a file leaves
    a copy): a test changes its copy, never ``src``."""
    shutil.copytree(src, dst, symlinks=True)
    run([*DVC, "checkout", "--relink"], dst)
    return dst


def assert_quiet(out: str) -> None:
    """``out`` (a DVC command's) says nothing about the optional pipelines that never ran, warns of
    nothing, and carries no TensorFlow or Keras start-up noise."""
    for noise in ("No file hash info", "failed to load", "reports/external", "kfold/folds",
                  "Checkout failed",
                  "WARNING:",  # e.g. DVC's "'agegender/data/__init__.py' is empty" per dep
                  "cuInit", "UserWarning"):  # TensorFlow's and Keras' start-up noise
        assert noise not in out, f"{noise!r} in:\n{out[-3000:]}"


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
    # the pretrained stage reads a small stand-in package from the project, not the registry
    tarball = make_package(proj / "npm" / "fake-models-1.0.0.tgz")
    params["pretrained"] = package_params(tarball, sri_sha512(tarball),
                                          tarball=tarball.relative_to(proj).as_posix())
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q"], proj)
    run([*DVC, "init", "-q"], proj)
    # the project's cache settings (cache.type: links, not copies), not the rest of .dvc/config
    # (a remote committed there is no business of the tests)
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    for key, value in config["cache"].items():
        run([*DVC, "config", f"cache.{key}", value.strip('"')], proj)
    run([*GIT, "add", "-A"], proj)
    run([*GIT, "commit", "-qm", "init"], proj)
    return proj


# --- one copy on disk: the cached outputs and their links to .dvc/cache ---------------------------

_DVC_VIEW = """\
import json, os
from dvc.repo import Repo
repo = Repo(".")
print(json.dumps({"outs": {os.path.relpath(o.fs_path, repo.root_dir): o.hash_info.value
                           for s in repo.index.stages for o in s.outs if o.use_cache and o.hash_info.value},
                  "cache_types": repo.cache.local.cache_types}))
"""


def _dvc_view(proj: Path) -> dict:
    """The cached outputs dvc.lock records (path -> md5) and cache.type, as DVC reads them (in a
    process of its own: DVC sets up logging)."""
    return json.loads(subprocess.run([sys.executable, "-c", _DVC_VIEW], cwd=proj, env=env(),
                                     capture_output=True, text=True, check=True).stdout)


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_file(proj: Path, md5_name: str) -> Path:
    """The entry of ``md5_name`` in the project's cache (DVC 3: .dvc/cache/files/md5/ab/cdef...)."""
    return proj / ".dvc" / "cache" / "files" / "md5" / md5_name[:2] / md5_name[2:]


def cached_files(proj: Path, outs: dict[str, str] | None = None) -> dict[str, str]:
    """Every file of the cached outputs that the workspace's dvc.lock records (``outs``, default
    read by DVC), path relative to ``proj`` -> md5; a directory output's files come from its
    manifest in the cache (.dir)."""
    files = {}
    for path, value in (_dvc_view(proj)["outs"] if outs is None else outs).items():
        if value.endswith(".dir"):
            manifest = json.loads(cache_file(proj, value).read_text())
            files.update({f"{path}/{entry['relpath']}": entry["md5"] for entry in manifest})
        else:
            files[path] = value
    return files


def _links(proj: Path, types: list[str]) -> list[str]:
    """Those of ``types`` this filesystem allows between the cache and the workspace, in their
    order, by DVC's own test (the one `dvc checkout` makes)."""
    from dvc_objects.fs.generic import test_links
    from dvc_objects.fs.local import LocalFileSystem

    fs = LocalFileSystem()
    return test_links(list(types), fs, str(proj / ".dvc" / "cache"), fs, str(proj / "x"))


_FIEMAP = 0xC020660B  # FS_IOC_FIEMAP (Linux)
_EXTENT_SHARED = 0x2000  # FIEMAP_EXTENT_SHARED


def _shares_extents(path: Path) -> bool | None:
    """Whether a block of ``path`` is shared with another file (a reflink), by Linux's FIEMAP; None
    where FIEMAP cannot say (another OS, a filesystem without it)."""
    import fcntl
    import struct

    count = 64
    request = bytearray(struct.pack("=QQLLLL", 0, 2**64 - 1, 1, 0, count, 0) + b"\0" * 56 * count)
    try:
        with open(path, "rb") as f:
            fcntl.ioctl(f.fileno(), _FIEMAP, request)
    except (OSError, AttributeError):
        return None
    mapped = struct.unpack_from("=L", request, 20)[0]
    flags = [struct.unpack_from("=L", request, 32 + 56 * i + 40)[0] for i in range(mapped)]
    return any(flag & _EXTENT_SHARED for flag in flags)


def link_kind(path: Path, cached: Path) -> str:
    """How the workspace file ``path`` holds the content of its cache entry ``cached``: "symlink"
    (to it), "hardlink" (the same inode), "reflink" (its own inode, blocks shared: FIEMAP), "copy",
    or "copy or reflink" where FIEMAP cannot tell."""
    if path.is_symlink():
        return "symlink" if path.resolve() == cached.resolve() else f"symlink to {os.readlink(path)}"
    a, b = path.stat(), cached.stat()
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
        return "hardlink"
    shared = _shares_extents(path)
    return "reflink" if shared else "copy" if shared is False else "copy or reflink"


def assert_one_copy(proj: Path, may_be_copies: set[str] = frozenset()) -> dict[str, str]:
    """Every file of the cached outputs is in the workspace with the content dvc.lock records, its
    cache entry still holds that content, and the file is linked to the entry as DVC links on this
    filesystem: by the first type of cache.type it allows (what `dvc checkout` uses), or by reflink
    where it can reflink (how DVC moves a stage's new files into the cache there); where it allows
    no link (cache.type ends in copy), a copy. Copies are also allowed where DVC leaves one
    (docs/scaling.md): a file whose content the cache already held when its stage ran
    (``may_be_copies``), or that another cached file also holds (data/features/spec.json of a model
    without a frozen base is data/interim/features.json). Returns path -> kind."""
    view = _dvc_view(proj)
    files = cached_files(proj, view["outs"])
    assert files, "no cached output recorded"
    contents = list(files.values())
    may_be_copies = set(may_be_copies) | {p for p, v in files.items() if contents.count(v) > 1}
    first = next((t for t in view["cache_types"] if t == "copy" or _links(proj, [t])), "no type")
    allowed = {first} | ({"reflink", "copy or reflink"} if _links(proj, ["reflink"]) else set())
    kinds = {}
    for path, value in files.items():
        ws, cached = proj / path, cache_file(proj, value)
        assert md5(ws) == value, f"{path}: not the content dvc.lock records"
        assert md5(cached) == value, f"{path}: its cache entry {cached} no longer holds {value}"
        kinds[path] = kind = link_kind(ws, cached)
        empty = ws.stat().st_size == 0 and kind in ("copy", "copy or reflink")  # no block to share
        assert kind in allowed or empty or (path in may_be_copies and kind == "copy"), \
            f"{path}: {kind}, not {' or '.join(sorted(allowed))} (cache.type on this filesystem)"
    return kinds
