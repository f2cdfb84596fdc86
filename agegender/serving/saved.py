"""Saving a trained model with what is needed to use it, and loading it back.

A ``.keras`` file is a zip archive; beside Keras' own entries it gets ``agegender.json``: the
family, the input profile, how the age output is decoded, the precision it was trained in and,
when one was fitted, the temperature of its gender output (:mod:`agegender.serving.calibration`).
The predictor reads that, so it needs no params file and cannot guess wrong. A file without a
temperature (saved before it existed, or trained without held-out faces) predicts as the network
says.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from agegender.data.bins import get_scheme
from agegender.data.images import Profile, get_profile
from agegender.errors import UserError
from agegender.model.families import get_family
from agegender.model.targets import AgeOutput
from agegender.serving.calibration import GenderCalibration

INFO_ENTRY = "agegender.json"
INFO_VERSION = 1
HALF = ("bfloat16", "float16")  # the compute types of the mixed-precision policies


class ModelFileError(UserError):
    """A model file that is missing, not a Keras model, or saved without this project's metadata."""


@dataclass(frozen=True)
class ModelInfo:
    """What a saved model is: ``family`` (agegender.model.families), ``profile`` (the images it
    reads), ``age_output`` (how its age output is read in years), ``precision`` it was trained in
    and ``gender_calibration`` (its fitted gender temperature, or None: none fitted)."""
    family: str
    profile: Profile
    age_output: AgeOutput
    precision: str
    gender_calibration: GenderCalibration | None = None

    @property
    def gender_temperature(self) -> float | None:
        """The temperature every prediction divides the gender logit by (None: none)."""
        return None if self.gender_calibration is None else self.gender_calibration.temperature

    @classmethod
    def for_family(cls, name: str, precision: str,
                   gender_calibration: GenderCalibration | None = None) -> "ModelInfo":
        family = get_family(name)
        return cls(name, get_profile(family.profile), family.age_output, precision, gender_calibration)

    def to_json(self) -> dict:
        a = self.age_output
        return {"version": INFO_VERSION, "family": self.family, "profile": asdict(self.profile),
                "age_output": {"kind": a.kind, "scheme": a.scheme.name if a.scheme else None,
                               "activation": a.activation, "sigma": a.sigma},
                "precision": self.precision,
                "gender_calibration": (None if self.gender_calibration is None
                                       else self.gender_calibration.to_json())}

    @classmethod
    def from_json(cls, data: dict) -> "ModelInfo":
        a = data["age_output"]
        scheme = get_scheme(a["scheme"]) if a["scheme"] else None
        return cls(data["family"], Profile(**data["profile"]),
                   AgeOutput(a["kind"], scheme, a["activation"], float(a["sigma"])), data["precision"],
                   GenderCalibration.from_json(data.get("gender_calibration")))  # older files: none


def save_model(model, path: str | Path, info: ModelInfo) -> None:
    """``model.save(path)`` plus the :class:`ModelInfo` entry inside the same file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(INFO_ENTRY, json.dumps(info.to_json(), indent=2))


def read_info(path: str | Path) -> ModelInfo:
    """The :class:`ModelInfo` of a saved model. Raises :class:`ModelFileError` saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path} (train one with `dvc repro`, or pass "
                             "the path of a .keras file)")
    try:
        with zipfile.ZipFile(path) as z:
            if INFO_ENTRY not in z.namelist():
                raise ModelFileError(
                    f"{path}: saved without this project's model information ({INFO_ENTRY}), so its "
                    "family, input size and age decoding are unknown: a model from elsewhere, or one "
                    "trained by an older version of the pipeline (retrain it with `dvc repro train`)")
            data = json.loads(z.read(INFO_ENTRY))
    except zipfile.BadZipFile:
        raise ModelFileError(f"{path}: not a Keras .keras file (not a zip archive)") from None
    try:
        return ModelInfo.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: unreadable {INFO_ENTRY} ({type(exc).__name__}: {exc})") from None


def load_model(path: str | Path, precision: str = "auto"):
    """(Keras model, :class:`ModelInfo`) of a saved model, loaded in Keras safe mode (no code
    from the file). Raises :class:`ModelFileError` (one line) for a missing, foreign or corrupt
    file: one Keras refuses (a Lambda layer, an unknown class, no config.json) included.

    ``precision``: ``auto`` predicts in the precision the model was trained in unless this machine
    would only emulate it (bfloat16 on a CPU without native BF16, float16 without a GPU): then in
    float32, which is faster there and as accurate. Or ``float32`` / the trained one by name.
    The returned info's ``precision`` is the one the model now computes in.
    """
    import dataclasses

    import keras

    from agegender import hardware
    from agegender.model import networks  # noqa: F401  networks registers custom layers

    info = read_info(path)
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for foreign files; safe mode stays on
        raise ModelFileError(f"{path}: Keras cannot load this model in safe mode "
                             f"({_first_line(exc)}); use a .keras file saved by this pipeline") from None
    if precision == "auto":
        precision = hardware.inference_precision(info.precision, hardware.cpu_info(), hardware.gpu_info())
    if precision == "float32" and info.precision != "float32":
        model = as_float32(model)
        info = dataclasses.replace(info, precision="float32")
    return model, info


def _first_line(exc: Exception, limit: int = 200) -> str:
    """``Type: first line of the message``, cut at ``limit`` characters: Keras' messages run to
    dozens of lines (whole layer configs)."""
    text = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def as_float32(model):
    """The same network and weights with every layer computing in float32 (its mixed-precision
    policies replaced), for machines that would only emulate 16-bit maths."""
    import keras

    def float32(obj):
        if isinstance(obj, dict):
            if obj.get("class_name") == "DTypePolicy" and str(obj.get("config", {}).get("name")).startswith("mixed_"):
                return {**obj, "config": {**obj["config"], "name": "float32"}}
            # a nested Sequential (the augmentation) built under the policy has an input of the
            # 16-bit type: a cast there and back (lossless for pixels, but 16-bit ops in an export)
            if obj.get("class_name") == "InputLayer" and obj.get("config", {}).get("dtype") in HALF:
                return {**obj, "config": {**obj["config"], "dtype": "float32"}}
            return {k: float32(v) for k, v in obj.items()}
        return [float32(v) for v in obj] if isinstance(obj, list) else obj

    config = float32(keras.saving.serialize_keras_object(model))
    clone = keras.saving.deserialize_keras_object(config, safe_mode=True)
    clone.set_weights(model.get_weights())
    return clone
