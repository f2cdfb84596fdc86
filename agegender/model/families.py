"""The model families: name -> input profile, age output and network builder.

``params.yaml`` picks one with ``model:`` and holds its recipe under ``models.<name>``; this module
is the only place that maps a name to code. It imports no TensorFlow, so reading params and
preprocessing stay light: the builder is named here and looked up in
:mod:`agegender.model.networks` when a network is built.
"""
from __future__ import annotations

from dataclasses import dataclass

from agegender.data.bins import CUSTOM12, FIVE_YEAR, RANGES10
from agegender.model.targets import AgeOutput


@dataclass(frozen=True)
class Family:
    name: str
    profile: str  # image profile the network reads (agegender.data.images.PROFILES)
    age_output: AgeOutput
    builder: str  # function of agegender.model.networks: builder(input_shape, age_output, augment, seed, **architecture)
    summary: str


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("compact", "rgb72", AgeOutput("distribution", sigma=2.0), "compact_resnet",
               "default: small residual multi-task CNN, age as a distribution over 0..116 years"),
        Family("multitask", "rgb128", AgeOutput("regression"), "multitask_cnn",
               "seed 001 model A: shared conv-BN-ReLU blocks, age (linear, MSE) and gender branches"),
        Family("small_multitask", "rgb128", AgeOutput("regression"), "small_multitask_cnn",
               "seed 002: two shared convs, one conv per branch, gender loss weighted 500:1"),
        Family("sigmoid_bins", "gray70", AgeOutput("bins", FIVE_YEAR, "sigmoid"), "twin_cnn",
               "seed 004: five-conv CNN, 20 sigmoid five-year groups; gender from its own CNN"),
        Family("relu_regression", "gray70", AgeOutput("regression", activation="relu"), "twin_cnn",
               "seed 004: the same CNN with one ReLU age output (MSE); gender from its own CNN"),
        Family("custom12", "rgb224", AgeOutput("bins", CUSTOM12, "softmax"), "plain_cnn",
               "seed 000: plain CNN, softmax over 12 custom age bins, class-balanced"),
        Family("ranges10", "gray128", AgeOutput("bins", RANGES10, "softmax"), "plain_cnn",
               "seed 003: plain CNN on 128 px gray, softmax over 10 age ranges"),
        Family("vgg16", "rgb128", AgeOutput("regression"), "vgg16_transfer",
               "seed 001 model B: VGG16 base, GAP, age/gender branches; frozen then fine-tuned"),
        Family("vgg19", "rgb70", AgeOutput("bins", FIVE_YEAR, "softmax"), "vgg19_transfer",
               "seed 004: VGG19 base, softmax over 20 five-year groups, class-weighted CE"),
    )
}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(FAMILIES)}") from None
