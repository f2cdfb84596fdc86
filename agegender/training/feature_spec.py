"""What the cached features of a transfer family depend on, as the small file check_params writes
and the features stage depends on instead of params (agegender/training/features.py says why). Light:
no TensorFlow, so the first stage stays fast; it hashes the weights file, after ensure_weights.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from agegender.errors import UserError
from agegender.pretrained import weights as weights_of
from agegender.model.families import get_family

NO_FEATURES = {"backbone": None}


class FeaturesError(UserError):
    """Cached features that are missing or were computed for other settings."""


def uses_cached_features(params) -> bool:
    """The model in use is a transfer family whose recipe trains from cached features."""
    return bool(get_family(params.model).pretrained) and params.recipe.features == "cached"


def feature_spec(params) -> dict:
    """What the cached features of ``params`` (agegender.params.Params) depend on, and nothing
    else: ``{"backbone": null}`` when the model in use trains from images. Reads the weights
    file to hash it, so call it after :func:`agegender.pretrained.weights.ensure_weights`."""
    if not uses_cached_features(params):
        return dict(NO_FEATURES)
    family, recipe = get_family(params.model), params.recipe
    weights = family.settings(recipe)["weights"]
    spec = {"backbone": family.pretrained, "profile": family.profile, "precision": recipe.precision}
    if recipe.cached_top:  # the cache holds the input of the first layer trained from it
        spec["cut"] = recipe.cached_top[0]
    if weights_of.fetched_by_stage(weights, params.paths.get("pretrained")):  # not fetched yet: its pin
        spec.update(weights="package", weights_integrity=params.pretrained.integrity)
        return spec
    path = weights_of.weights_file(family.pretrained, weights)
    if path is None:  # random initialisation: the seed decides the base
        spec.update(weights=None, seed=params.train.seed)
    else:
        spec.update(weights="imagenet" if str(weights).lower() == "imagenet" else "file",
                    weights_sha256=file_sha256(path))
    return spec


def file_sha256(path: Path) -> str:
    """The sha256 of a file; of a folder (an unpacked package), of its files' relative paths and
    contents in order."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_spec(path: str | Path, spec: dict) -> None:
    """The spec as the features stage's dependency: same spec, same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, sort_keys=True, indent=1) + "\n")


def read_spec(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FeaturesError(f"features spec not found: {path} (run: dvc repro features)")
    return json.loads(path.read_text())
