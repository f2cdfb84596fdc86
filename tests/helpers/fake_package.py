"""A small npm package tarball, as `npm pack` writes one (members under ``package/``), for the
pretrained stage's tests: no registry, no 145 MB. Its files stand in for the face base's."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

FILES = {"package.json": b'{"name": "@fake/models", "version": "1.0.0"}\n', "LICENSE": b"MIT\n",
         "models/faceres.json": b'{"format": "graph-model"}\n', "models/faceres.bin": bytes(range(256)) * 8,
         "models/other.bin": b"\0" * 4096}  # a file the stage does not keep


def make_package(path: Path, files: dict[str, bytes] = FILES) -> Path:
    """``path`` (a .tgz) holding ``files`` under ``package/``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def package_params(path: Path | None, integrity: str, **overrides) -> dict:
    """params.yaml's ``pretrained`` section for the fake package at ``path`` (read instead of
    fetching; None: fetched by npm); ``overrides`` replace its keys (``tarball`` too)."""
    return {"package": "@fake/models", "version": "1.0.0", "integrity": integrity,
            "size": path.stat().st_size if path else 1000,
            "files": ["package.json", "LICENSE", "models/faceres.json", "models/faceres.bin"],
            "tarball": None if path is None else str(path), **overrides}
