"""Keep every DVC stage's code deps equal to the project files its entry point imports.

    python tools/sync_dvc_deps.py           # rewrite the code deps of each stage of the pipelines
    python tools/sync_dvc_deps.py --check   # exit 1 and list each stage whose code deps drifted

A stage's code is its entry point (``python -m stages.X`` in its ``cmd``) and every project module
that imports, transitively: imports inside functions count (train imports TensorFlow-heavy
modules in ``main()``), and importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py``.
Its code deps are those files, one entry each, no folder: an edit re-runs exactly the stages that
run the edited file (a folder dep would re-run every stage that imports any file of it).

Only the code entries of each ``deps:`` list are rewritten (paths under ``agegender/`` or
``stages/``); data deps, comments and everything else in the file stay as they are. Run it after
adding, moving or splitting a module, or changing what a module imports; tests/unit/tools/test_dvc_deps.py
fails until the dvc.yaml files agree.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agegender", "stages")  # the project's code; anything else is a third-party import
PIPELINES = ("dvc.yaml", "kfold/dvc.yaml", "external/dvc.yaml", "export/dvc.yaml")
ENTRY = re.compile(r"python -m ([\w.]+)")
# a code entry of a deps list: a path under one of PACKAGES (a file, or a folder as deps once were)
CODE_ITEM = re.compile(r"^(\s*)- (?:%s)(?:/\S*)?\s*(?:#.*)?$" % "|".join(PACKAGES))


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file of a project module (``a.b`` -> a/b.py or a/b/__init__.py), None if not ours."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Project modules the file ``path`` imports, anywhere in it, with every parent package."""
    module = ".".join(path.relative_to(root).with_suffix("").parts)
    package = module.removesuffix(".__init__") if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x / from ..a import b: relative to this file's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # maybe submodules
    found = set()
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            if module_file(".".join(parts[:i]), root):
                found.add(".".join(parts[:i]))
    return found


def code_files(entry: str, root: Path = ROOT) -> set[Path]:
    """Every project file (relative to ``root``) that running module ``entry`` executes."""
    parts = entry.split(".")
    seen, todo = set(), [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name, root)
        if path is not None:  # None: a namespace package (stages/ has no __init__.py)
            todo.extend(imported_modules(path, root) - seen)
    return {module_file(name, root).relative_to(root) for name in seen if module_file(name, root)}


def is_code(dep: str) -> bool:
    return dep.split("/")[0] in PACKAGES


def wanted_deps(dvc_file: Path, stage: dict, root: Path = ROOT) -> list[str]:
    """The code deps the stage should declare: its entry point first, then the rest sorted, as
    paths relative to the stage's working directory."""
    match = ENTRY.search(stage.get("cmd", ""))
    if not match:
        raise SystemExit(f"{dvc_file}: a stage's cmd runs no `python -m MODULE`: {stage.get('cmd')!r}")
    entry = match.group(1)
    wdir = (dvc_file.parent / stage.get("wdir", ".")).resolve()
    first = Path(*entry.split(".")).with_suffix(".py")
    files = sorted(code_files(entry, root) - {first})
    return [Path(os.path.relpath(root / f, wdir)).as_posix() for f in (first, *files)]


def declared_deps(stage: dict) -> list[str]:
    return [d for d in (stage.get("deps") or []) if isinstance(d, str) and is_code(d)]


def drift(dvc_file: Path, text: str | None = None, root: Path = ROOT) -> list[str]:
    """One line per stage of ``dvc_file`` whose code deps differ from its imports."""
    text = dvc_file.read_text() if text is None else text
    lines = []
    for name, stage in (yaml.safe_load(text).get("stages") or {}).items():
        want, have = wanted_deps(dvc_file, stage, root), declared_deps(stage)
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        label = f"{dvc_file.relative_to(root).as_posix()}:{name}"
        if missing:
            lines.append(f"{label}: imports but does not declare {', '.join(missing)}")
        if extra:
            lines.append(f"{label}: declares but does not import {', '.join(extra)}")
    return lines


def sync_text(dvc_file: Path, text: str, root: Path = ROOT) -> str:
    """``text`` (the content of ``dvc_file``) with each stage's code deps replaced by its imports,
    written where its first code dep was (else at the end of its deps list)."""
    stages = yaml.safe_load(text).get("stages") or {}
    out, lines, i = [], text.splitlines(keepends=True), 0
    stage_header = re.compile(r"^  ([\w.-]+):\s*(#.*)?$")
    current = None
    while i < len(lines):
        line = lines[i]
        header = stage_header.match(line)
        if header and header.group(1) in stages:
            current = header.group(1)
        elif re.match(r"^\S", line):
            current = None  # left `stages:` (metrics:, plots:, ...)
        if current is None or not re.match(r"^    deps:\s*(#.*)?$", line):
            out.append(line)
            i += 1
            continue
        out.append(line)
        i += 1
        block = []  # the deps list: its items, and comments or blank lines among them
        while i < len(lines) and (lines[i].startswith("      ") or not lines[i].strip()):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():  # blank lines after the list belong to the next key
            i -= 1
            block.pop()
        items = [f"      - {d}\n" for d in wanted_deps(dvc_file, stages[current], root)]
        code_at = [k for k, b in enumerate(block) if CODE_ITEM.match(b.rstrip("\n"))]
        kept = [b for k, b in enumerate(block) if k not in code_at]
        at = code_at[0] if code_at else len(kept)
        out.extend(kept[:at] + items + kept[at:])
    new = "".join(out)
    left = drift(dvc_file, new, root)  # the rewrite must leave nothing to report
    if left:
        raise SystemExit("\n".join(left) + f"\n{dvc_file}: could not rewrite these deps (does each "
                         "stage have a `deps:` list, indented as the others?); edit them by hand")
    return new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 listing the stages whose code deps drifted")
    args = parser.parse_args(argv)
    problems = []
    for name in PIPELINES:
        path = ROOT / name
        if args.check:
            problems += drift(path)
            continue
        text = path.read_text()
        new = sync_text(path, text)
        if new != text:
            path.write_text(new)
            print(f"rewrote the code deps of {name}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print("run: python tools/sync_dvc_deps.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
