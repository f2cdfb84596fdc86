"""This checkout's params.yaml for the tests that start from it (a stage's params file, an edit that
must be refused): whatever a user has set there (another model, other epochs, precision, paths or
seeds), a test sets every value it relies on itself, so the suite passes on any valid params.yaml.

    raw_params({"model": "compact", "models.compact.epochs": 26})
    write_params(tmp_path / "params.yaml", {"data.source": str(folder)})
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from locations import ROOT


def set_key(raw: dict, key: str, value: Any) -> dict:
    """Set the dotted ``key`` (``models.compact.epochs``) of ``raw`` to ``value``, making the
    mappings on the way where they are missing; returns ``raw``."""
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return raw


def raw_params(settings: dict[str, Any] | None = None) -> dict:
    """params.yaml as a mapping (a fresh one each call), with ``settings`` ({dotted key: value})
    set in it."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in (settings or {}).items():
        set_key(raw, key, value)
    return raw


def write_params(path: Path, settings: dict[str, Any] | None = None, raw: dict | None = None) -> Path:
    """Write ``raw`` (default: :func:`raw_params`) with ``settings`` set in it to ``path``."""
    raw = raw_params() if raw is None else raw
    for key, value in (settings or {}).items():
        set_key(raw, key, value)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
