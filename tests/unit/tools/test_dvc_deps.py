"""dvc.yaml knows exactly the code each stage runs, so `dvc repro` re-runs what an edit touches and
nothing else.

For each stage of dvc.yaml, kfold/dvc.yaml and external/dvc.yaml, the declared code deps must be
the project files its command imports (transitively, function-level imports and packages'
``__init__`` files included), no more and no less. tools/sync_dvc_deps.py computes them (one place
for the import walk) and rewrites the deps; the end-to-end tests (tests/e2e/test_pipeline.py) edit
a module in a copy of the project and check which stages DVC then wants to run.
"""
from pathlib import Path

import pytest
import yaml

from tools import sync_dvc_deps as deps

ROOT = deps.ROOT


def _stages():
    for name in deps.PIPELINES:
        for stage in yaml.safe_load((ROOT / name).read_text())["stages"]:
            yield name, stage


ALL_STAGES = list(_stages())


@pytest.mark.parametrize("dvc_file, stage", ALL_STAGES, ids=[f"{f}:{s}" for f, s in ALL_STAGES])
def test_declared_code_deps_are_exactly_the_files_the_stage_imports(dvc_file, stage):
    path = ROOT / dvc_file
    problems = [p for p in deps.drift(path) if p.startswith(f"{dvc_file}:{stage}:")]
    assert not problems, "\n".join(problems) + "\nrun: python tools/sync_dvc_deps.py"
    declared = deps.declared_deps(yaml.safe_load(path.read_text())["stages"][stage])
    assert all((ROOT / d).is_file() for d in declared), "code deps are files, not folders"


def test_the_check_fails_on_a_missing_dep_and_on_one_the_stage_does_not_import():
    path = ROOT / "dvc.yaml"
    text = path.read_text()
    assert "      - agegender/model/build.py\n" in text
    mutated = text.replace("      - agegender/model/build.py\n", "", 1)  # features' (the first): now missing
    mutated = mutated.replace("      - stages/ingest.py\n",  # ingest runs no network code
                              "      - stages/ingest.py\n      - agegender/model/networks.py\n", 1)
    problems = deps.drift(path, mutated)
    assert problems == [
        "dvc.yaml:ingest: declares but does not import agegender/model/networks.py",
        "dvc.yaml:features: imports but does not declare agegender/model/build.py",
    ]
    # the rewrite puts back exactly what was there, data deps and comments included
    assert deps.sync_text(path, mutated) == text


def test_the_rewrite_replaces_folder_deps_and_keeps_data_deps_and_comments():
    path = ROOT / "external" / "dvc.yaml"
    text = path.read_text()
    stage = yaml.safe_load(text)["stages"]["evaluate_external"]
    code = deps.declared_deps(stage)
    folders = "".join(f"      - {d}\n" for d in ("agegender", "agegender/model", "stages/evaluate_external.py"))
    lines = text.splitlines(keepends=True)
    first = lines.index(f"      - {code[0]}\n")
    mutated = "".join(line for line in lines[:first]) + folders + "".join(
        line for line in lines[first:] if line.strip().removeprefix("- ") not in code)
    assert deps.drift(path, mutated)  # folders and a missing list are drift
    assert deps.sync_text(path, mutated) == text


def test_a_new_stage_gets_its_code_deps_after_its_data_deps():
    path = ROOT / "dvc.yaml"
    text = path.read_text().replace("stages:\n", (
        "stages:\n  new:  # a stage just written\n    cmd: python -m stages.plot --x\n    deps:\n"
        "      - reports/x.csv  # its data\n    outs:\n      - reports/y\n\n"), 1)
    new = deps.sync_text(path, text)
    block = new[new.index("  new:"):new.index("    outs:")].splitlines()
    assert block[3] == "      - reports/x.csv  # its data" and block[4] == "      - stages/plot.py"
    assert {line.removeprefix("      - ") for line in block[4:]} == {
        p.as_posix() for p in deps.code_files("stages.plot")}
    assert new.replace(new[new.index("  new:"):new.index("  check_params:")], "") == path.read_text()


def test_the_walk_sees_function_level_and_nested_imports():
    # train imports TensorFlow-heavy modules inside main(); they must be counted
    files = deps.code_files("stages.train")
    assert Path("agegender/training/setup.py") in files and Path("agegender/serving/saved.py") in files
    assert Path("agegender/data/bins.py") in files  # via the age outputs of the families
    assert Path("agegender/__init__.py") in files and Path("agegender/model/__init__.py") in files


def test_the_walk_resolves_relative_imports(tmp_path):
    pkg = tmp_path / "agegender" / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / "agegender" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n    from ..c import g\n")
    (pkg / "b.py").write_text("")
    (tmp_path / "agegender" / "c.py").write_text("")
    assert deps.code_files("agegender.sub.a", tmp_path) == {
        Path(p) for p in ("agegender/__init__.py", "agegender/sub/__init__.py", "agegender/sub/a.py",
                          "agegender/sub/b.py", "agegender/c.py")}


def test_stages_import_only_the_code_they_run():
    """The rooms match the stages: reading the cached arrays does not pull in the raw data and
    labelled sets, and reading params pulls in no network code (nor TensorFlow)."""
    train = {p.as_posix() for p in deps.code_files("stages.train")}
    assert not train & {"agegender/data/labelled.py", "agegender/data/ingest.py", "agegender/data/source.py"}
    ingest = {p.as_posix() for p in deps.code_files("stages.ingest")}
    assert not ingest & {"agegender/model/networks.py", "agegender/training/setup.py",
                         "agegender/data/arrays.py"}


def test_stage_entry_points_never_import_each_other():
    for path in sorted((ROOT / "stages").glob("*.py")):
        others = {m for m in deps.imported_modules(path) if m.startswith("stages")}
        assert not others - {"stages"}, f"{path.name} imports {others}"


def test_every_stage_but_the_check_depends_on_the_params_check():
    for dvc_file, stage in ALL_STAGES:
        declared = yaml.safe_load((ROOT / dvc_file).read_text())["stages"][stage]["deps"]
        if stage == "check_params":
            assert "params.yaml" in declared
        else:
            assert "${paths.params_check}" in declared, f"{dvc_file}:{stage}"


def test_the_command_line_check_passes_on_the_committed_pipelines(capsys):
    assert deps.main(["--check"]) == 0


def test_no_declared_code_dep_is_an_empty_file():
    """DVC warns "'x' is empty." for an empty dep on every `dvc repro` / `dvc status`, twice per
    stage that lists it (an empty package ``__init__.py`` did: dozens of lines on a plain run);
    a one-line docstring keeps the run quiet."""
    declared = {d for name, stage in ALL_STAGES
                for d in deps.declared_deps(yaml.safe_load((ROOT / name).read_text())["stages"][stage])}
    empty = sorted(d for d in declared if (ROOT / d).is_file() and (ROOT / d).stat().st_size == 0)
    assert not empty, f"empty code deps (DVC warns on each): {empty}"
