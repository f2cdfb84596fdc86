"""The typed train summary: what a training run did, as ``train_summary.json`` holds it.

Written by the train stage (from :func:`agegender.training.fit.fit`), read by attribute by evaluate,
k-fold and the model card. No TensorFlow here, so the light stages can read it.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from agegender.errors import UserError


@dataclass(frozen=True)
class TrainSummary:
    """What a training run did: ``train_summary.json``, field for field in the file's key order.

    ``epochs_run`` and ``train_seconds`` count every epoch of the run, across a resume;
    ``best_val_age_mae`` (years) is None after a final fit; ``precision`` is the one trained in,
    ``precision_setting`` the recipe's (may be ``auto``); ``isa`` the CPU's speed-relevant flags,
    space-separated; ``resumed`` whether a backup was resumed."""
    model: str
    epochs_run: int
    best_val_age_mae: float | None
    final_fit: bool
    train_seconds: float
    train_images: int
    train_images_per_second: float
    parameters: int
    precision: str
    precision_setting: str
    device: str
    isa: str
    strategy: str
    resumed: bool
    # FLOPs counted from the model: per phase, one training step's FLOPs per face x faces x epochs
    # run (agegender.training.flops); None in summaries written before it was counted
    train_tflop: float | None = None
    # the features stage's pass over every train / val face and its mirror image, for a recipe
    # trained from cached features (counted from the frozen model as train_tflop); None otherwise
    features_tflop: float | None = None

    def to_json(self) -> dict:
        """The file's content; a summary read from a file written before a cost was counted
        writes back as it was (no train_tflop / features_tflop key)."""
        data = asdict(self)
        for key in ("train_tflop", "features_tflop"):
            if data[key] is None:
                del data[key]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "TrainSummary":
        """From the parsed file; raises ValueError naming missing or unknown keys."""
        names = [f.name for f in fields(cls)]
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing, unknown = [n for n in required if n not in data], sorted(set(data) - set(names))
        if missing or unknown:
            raise ValueError(f"train summary: missing keys {missing}, unknown keys {unknown}")
        return cls(**{n: data[n] for n in names if n in data})

    @classmethod
    def read(cls, path: str | Path) -> "TrainSummary":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a train summary of this pipeline ({exc}); "
                            "rerun `dvc repro train`") from None

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")
