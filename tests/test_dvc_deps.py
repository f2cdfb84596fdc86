"""dvc.yaml knows every file of code a stage runs, so `dvc repro` misses no change.

For each stage of dvc.yaml, kfold/dvc.yaml and external/dvc.yaml, the project modules its command imports
(transitively, function-level imports and packages' ``__init__`` files included) must each lie
under one of the stage's declared deps. The end-to-end test (test_pipeline.py) then edits the bins
module in a copy and checks that ``dvc status`` reports the stages that run it.
"""
import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agegender", "stages")


def module_file(name: str) -> Path | None:
    """The file of a project module (``a.b`` -> a/b.py or a/b/__init__.py), None if not ours."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path) -> set[str]:
    """Project modules one file imports, anywhere in it, with every parent package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # submodules
    found = set()
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            if module_file(".".join(parts[:i])):
                found.add(".".join(parts[:i]))
    return found


def code_files(entry: str) -> set[Path]:
    """Every project file the module ``entry`` runs, transitively."""
    parts = entry.split(".")
    seen, todo = set(), [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        if path is not None:  # None: a namespace package (stages/ has no __init__.py)
            todo.extend(imported_modules(path) - seen)
    return {module_file(name).relative_to(ROOT) for name in seen if module_file(name)}


def stages(dvc_file: str):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())

    def render(text: str) -> str:
        return re.sub(r"\$\{([\w.]+)\}", lambda m: _lookup(params, m.group(1)), text)

    for name, stage in yaml.safe_load((ROOT / dvc_file).read_text())["stages"].items():
        entry = re.search(r"python -m ([\w.]+)", stage["cmd"]).group(1)
        deps = [Path(render(d if isinstance(d, str) else next(iter(d)))) for d in stage["deps"]]
        yield f"{dvc_file}:{name}", entry, deps


def _lookup(params: dict, key: str) -> str:
    value = params
    for part in key.split("."):
        value = value[part]
    return str(value)


ALL_STAGES = [*stages("dvc.yaml"), *stages("kfold/dvc.yaml"), *stages("external/dvc.yaml")]


@pytest.mark.parametrize("stage, entry, deps", ALL_STAGES, ids=[s[0] for s in ALL_STAGES])
def test_declared_deps_cover_every_module_the_stage_imports(stage, entry, deps):
    files = code_files(entry)
    assert Path(*entry.split(".")).with_suffix(".py") in files
    uncovered = sorted(str(f) for f in files if not any(f == d or d in f.parents for d in deps))
    assert not uncovered, f"{stage} runs code dvc.yaml does not declare: {uncovered}"


def test_the_coverage_check_sees_function_level_and_nested_imports():
    # train imports TensorFlow-heavy modules inside main(); they must be counted
    files = code_files("stages.train")
    assert Path("agegender/model/training.py") in files and Path("agegender/model/saved.py") in files
    assert Path("agegender/data/bins.py") in files  # via the age outputs of the families
    assert Path("agegender/__init__.py") in files and Path("agegender/model/__init__.py") in files


def test_stage_entry_points_never_import_each_other():
    for path in sorted((ROOT / "stages").glob("*.py")):
        others = {m for m in imported_modules(path) if m.startswith("stages")}
        assert not others - {"stages"}, f"{path.name} imports {others}"
