"""Reading ``params.yaml``: the one place every stage takes its settings and seeds from."""
from __future__ import annotations

from pathlib import Path

import yaml

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict:
    """Return the parsed params file as a dict.

    Raises ``FileNotFoundError`` naming the path when it does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"params file not found: {path.resolve()}")
    with path.open() as f:
        return yaml.safe_load(f) or {}


def model_settings(params: dict, name: str) -> dict:
    """The training settings of model ``name``: ``train`` with ``models.<name>`` laid over it."""
    return {**params["train"], **(params.get("models", {}).get(name) or {})}
