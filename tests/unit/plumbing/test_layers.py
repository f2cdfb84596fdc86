"""The library's layers: every import (inside functions too) goes to the same layer or a lower one,
and no modules import each other in a circle. Bottom to top: the settings and plumbing
(params, errors, hardware, live, quiet_start, commands), data, faces, pretrained, model, training,
serving, then evaluation and prediction; stages and benchmarks sit on top and are not checked here.
The unit tests mirror the same rooms (tests/unit/<room>/, mapped in tests/README.md)."""
import ast
from pathlib import Path

from locations import ROOT

LAYERS = [("params", "errors", "hardware", "live", "quiet_start", "commands"), ("data",), ("faces",),
          ("pretrained",), ("model",), ("training",), ("serving",), ("evaluation", "prediction")]


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"{module}: in no layer; add it to LAYERS (and to the README's layout)")


def _imports() -> dict[str, set[str]]:
    """module -> the agegender modules it imports (a package import names the package's module)."""
    graph = {}
    for path in sorted((ROOT / "agegender").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agegender"):
                for alias in node.names:  # from agegender.model import networks: the submodule
                    sub = f"{node.module}.{alias.name}"
                    exists = (ROOT / Path(*sub.split("."))).with_suffix(".py").is_file()
                    found.add(sub if exists else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("agegender")}
        graph[module] = found - {module}
    return graph


def _up(graph) -> list[str]:
    return [f"{m} -> {t}" for m, targets in graph.items() if m != "agegender"
            for t in targets if t != "agegender" and _layer(t) > _layer(m)]


def _circles(graph) -> list[list[str]]:
    circles, state = [], {}

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return circles


def test_no_import_runs_up_a_layer():
    assert not _up(_imports())


def test_no_modules_import_each_other_in_a_circle():
    assert not _circles(_imports())


def test_the_checks_see_an_import_up_and_a_circle():
    """Not vacuous: the graph holds the real imports (function-level ones too), and the checks
    catch the two faults this layout removed (data importing face finding; features <-> setup)."""
    graph = _imports()
    assert "agegender.model.families" in graph["agegender.training.feature_spec"]
    assert "agegender.training.features" in graph["agegender.training.setup"]  # inside a function
    fake = {**graph, "agegender.data.preprocessing": graph["agegender.data.preprocessing"] | {"agegender.faces.recut"},
            "agegender.training.features": graph["agegender.training.features"] | {"agegender.training.setup"}}
    assert _up(fake) == ["agegender.data.preprocessing -> agegender.faces.recut"]
    assert [set(c) for c in _circles(fake)] == [{"agegender.training.features", "agegender.training.setup"}]


def test_serving_and_prediction_need_no_training_module():
    """A model put to use reads images through the data room's batches, not the training room's:
    prediction never imports what only training needs."""
    graph = _imports()
    users = [m for m in graph if m.startswith(("agegender.serving", "agegender.prediction"))]
    assert users and not [f"{m} -> {t}" for m in users for t in graph[m] if t.startswith("agegender.training")]


def test_the_unit_tests_mirror_the_rooms_and_are_on_the_map():
    """tests/unit/<room>/ for a room of the library (a subpackage of agegender/, or plumbing for its
    top-level modules) or a top-level folder (stages, benchmarks, tools); no test file outside them,
    and each named in tests/README.md's map."""
    unit = ROOT / "tests" / "unit"
    rooms = {p.name for p in (ROOT / "agegender").iterdir() if (p / "__init__.py").is_file()}
    allowed = rooms | {"plumbing", "stages", "benchmarks", "tools"}
    folders = {p.name for p in unit.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= allowed, f"not a room of agegender/: {sorted(folders - allowed)}"
    assert not list(unit.glob("test_*.py")), "a test file goes in the folder of the room it tests"
    described = (ROOT / "tests" / "README.md").read_text()
    missing = sorted(str(p.relative_to(unit)) for p in unit.rglob("test_*.py") if f"`{p.name}`" not in described)
    assert not missing, f"not on tests/README.md's map: {missing}"
