"""The model families: name -> input profile, age output and network builder.

``params.yaml`` picks one with ``model:`` and holds its hyper-parameters under ``models.<name>``;
this module is the only place that maps a name to code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras

from stages import networks
from stages.bins import CUSTOM12, FIVE_YEAR, RANGES10
from stages.images import get_profile
from stages.targets import AgeOutput


@dataclass(frozen=True)
class ModelSpec:
    name: str
    profile: str  # image profile the network reads (see stages.images.PROFILES)
    age_output: AgeOutput
    build: Callable[..., keras.Model]  # build(input_shape, age_output, augment, seed, **hparams)
    summary: str


SPECS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec("compact", "rgb72", AgeOutput("distribution", sigma=2.0), networks.compact_resnet,
                  "default: small residual multi-task CNN, age as a distribution over 0..116 years"),
        ModelSpec("multitask", "rgb128", AgeOutput("regression"), networks.multitask_cnn,
                  "seed 001 model A: shared conv-BN-ReLU blocks, age (linear, MSE) and gender branches"),
        ModelSpec("small_multitask", "rgb128", AgeOutput("regression"), networks.small_multitask_cnn,
                  "seed 002: two shared convs, one conv per branch, gender loss weighted 500:1"),
        ModelSpec("sigmoid_bins", "gray70", AgeOutput("bins", FIVE_YEAR, "sigmoid"), networks.twin_cnn,
                  "seed 004: five-conv CNN, 20 sigmoid five-year groups; gender from its own CNN"),
        ModelSpec("relu_regression", "gray70", AgeOutput("regression", activation="relu"),
                  networks.twin_cnn,
                  "seed 004: the same CNN with one ReLU age output (MSE); gender from its own CNN"),
        ModelSpec("custom12", "rgb224", AgeOutput("bins", CUSTOM12, "softmax"), networks.plain_cnn,
                  "seed 000: plain CNN, softmax over 12 custom age bins, class-balanced"),
        ModelSpec("ranges10", "gray128", AgeOutput("bins", RANGES10, "softmax"), networks.plain_cnn,
                  "seed 003: plain CNN on 128 px gray, softmax over 10 age ranges"),
        ModelSpec("vgg16", "rgb128", AgeOutput("regression"), networks.vgg16_transfer,
                  "seed 001 model B: VGG16 base, GAP, age/gender branches; frozen then fine-tuned"),
        ModelSpec("vgg19", "rgb70", AgeOutput("bins", FIVE_YEAR, "softmax"), networks.vgg19_transfer,
                  "seed 004: VGG19 base, softmax over 20 five-year groups, class-weighted CE"),
    )
}


def get_spec(name: str) -> ModelSpec:
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(SPECS)}") from None


def profile_for(name: str) -> str:
    """The image profile a model reads: preprocess builds only this one."""
    return get_spec(name).profile


PRECISIONS = ("float32", "mixed_bfloat16")


def build_model(name: str, architecture: dict | None, augment: dict, seed: int,
                precision: str | None = None) -> keras.Model:
    """Build the named network (uncompiled) with architecture hyper-parameters from params.

    ``precision``: ``float32`` (also for None), or ``mixed_bfloat16`` (weights in float32, layers
    compute in bfloat16 except the float32 heads; on this project's AVX512-BF16 CPU the default
    network trains 1.3x and predicts 1.6x as fast). The layers keep their policy when the model
    is saved, so a loaded model predicts in the same precision.
    """
    precision = precision or "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    spec = get_spec(name)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)  # layers take the policy when created
    try:
        return spec.build(get_profile(spec.profile).shape, spec.age_output, augment, seed,
                          **(architecture or {}))
    finally:
        keras.mixed_precision.set_global_policy(previous)
