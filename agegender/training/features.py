"""Frozen features of the transfer families, computed once: the features stage runs the frozen part
of the network (the base's preprocessing and the whole conv base, e.g. VGG16's 4 x 4 x 512 map at
128 px) over every face of train and val and over its mirror image, and the head (and the frozen
phase of a ``fine_tune``) trains from them (``models.<name>.features: cached``).

What the features depend on (:func:`feature_spec`: the base, where its weights come from and the
sha256 of the weights file, the image profile, the precision setting, the seed when the weights
are random) is written by check_params as a small JSON file that the features stage depends on
instead of params: a head-only change (learning rate, loss weights, epochs) leaves that file byte
for byte the same, so DVC does not run the features stage again. For a family without a base, or
``features: images``, the spec is ``{"backbone": null}`` and the stage writes only that.

On disk (``paths.features``): ``spec.json`` (the spec, plus the precision resolved, the shapes and
the pass's FLOPs, counted from the frozen model: ``tflop``),
``base.weights.h5`` (the base's weights the features came from, which train loads into the model
it saves, so a random base is the same base), and per split ``{split}_features.npy`` and
``{split}_features_flip.npy``: float16 (N, H, W, K), row i the face of ``{split}_labels.npy`` row i
and its mirror image. Training reads them a batch at a time (:class:`FlipPairs`).

The spec itself (:func:`feature_spec`) is agegender/training/feature_spec.py's, light for check_params.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agegender.data.arrays import ImageFiles, load_split
from agegender.model.families import get_family
from agegender.training.feature_spec import (  # noqa: F401
    NO_FEATURES,
    FeaturesError,
    feature_spec,
    read_spec,
    uses_cached_features,
    write_spec,
)

log = logging.getLogger(__name__)
SPLITS = ("train", "val")  # evaluate scores the saved image model on test: no test features needed
SPEC = "spec.json"
BASE_WEIGHTS = "base.weights.h5"
FLOAT16_MAX = float(np.finfo(np.float16).max)


# --- the frozen part and the head of a transfer network (networks.transfer_network) ------------

def frozen_model(model, backbone: str | None = None, cut: str | None = None):
    """The frozen part of a transfer network as a model of its own: pixels after augmentation
    (uint8 range, (B, S, S, 3)) -> the base's feature map (B, H, W, K); with ``cut`` (a layer of
    the nested base ``backbone``), the input of that layer instead. Shares the layers."""
    import keras

    from agegender.model.networks import HEAD_INPUT

    if cut is None:
        return keras.Model(model.get_layer("augment").output, model.get_layer(HEAD_INPUT).input,
                           name="frozen")
    base = _nested_base(model, backbone, cut)
    bottom = keras.Model(base.input, base.get_layer(cut).input, name=f"{backbone}_bottom")
    inputs = keras.Input(model.get_layer("augment").output.shape[1:])
    names = [layer.name for layer in model.layers]
    x = inputs  # the layers between the augmentation and the base (its preprocessing), in order
    for layer in model.layers[names.index("augment") + 1:names.index(backbone)]:
        x = layer(x)
    return keras.Model(inputs, bottom(x), name="frozen")


def head_model(model, backbone: str | None = None, cut: str | None = None):
    """The head of a transfer network as a model of its own: feature map (B, H, W, K) ->
    ``{"age", "gender"}``; with ``cut``, the nested base's layers from ``cut`` on, then the head
    (what a recipe's ``cached_top`` trains). Shares the layers, so training it trains the full
    model's."""
    import keras

    from agegender.model.networks import HEAD_INPUT

    head = keras.Model(model.get_layer(HEAD_INPUT).input, model.output, name="head")
    if cut is None:
        return head
    base = _nested_base(model, backbone, cut)
    top = keras.Model(base.get_layer(cut).input, base.output, name=f"{backbone}_top")
    inputs = keras.Input(top.input_shape[1:])
    return keras.Model(inputs, head(top(inputs)), name="head")


def _nested_base(model, backbone: str | None, cut: str):
    base = model.get_layer(backbone)
    if cut not in [layer.name for layer in base.layers]:
        raise FeaturesError(f"cached_top: {backbone} has no layer {cut!r} (its last layers: "
                            f"{', '.join(layer.name for layer in base.layers[-4:])})")
    return base


def check_cached_top(model, backbone: str, top: list[str]) -> None:
    """Every layer ``top`` names is in the base at or after the first (the cut): one line
    otherwise, before anything trains (a layer below the cut would silently stay frozen)."""
    names = [layer.name for layer in _nested_base(model, backbone, top[0]).layers]
    after = names[names.index(top[0]):]
    wrong = [name for name in top if name not in after]
    if wrong:
        raise FeaturesError(f"cached_top: {', '.join(wrong)} not among {backbone}'s layers from "
                            f"{top[0]} on ({', '.join(after[:6])}{', ...' if len(after) > 6 else ''})")


def compute_features(params, data_dir: str | Path, out_dir: str | Path, spec: dict,
                     batch_size: int = 64) -> dict:
    """Run the frozen part over every face of :data:`SPLITS` and its mirror image; write the
    features, the base's weights and ``spec.json`` (``spec`` plus what was computed) to
    ``out_dir``. With ``{"backbone": null}`` only ``spec.json``. Returns what spec.json holds."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if spec.get("backbone") is None:
        write_spec(out / SPEC, spec)
        return spec
    if feature_spec(params) != spec:
        raise FeaturesError("the features spec does not match params.yaml: run dvc repro (check_params "
                            "writes it)")
    import time

    from agegender import hardware
    from agegender.model.build import build_model, seed_everything

    family = get_family(params.model)
    precision = hardware.choose_precision(spec["precision"], hardware.cpu_info(), hardware.gpu_info(),
                                          cpu_bf16=family.cpu_bf16)
    seed_everything(spec.get("seed", params.train.seed))
    model = build_model(family, params.recipe, params.train.seed, precision)
    if params.recipe.cached_top:
        check_cached_top(model, family.pretrained, params.recipe.cached_top)
    frozen = frozen_model(model, family.pretrained, spec.get("cut"))
    model.get_layer(family.pretrained).save_weights(out / BASE_WEIGHTS)
    from agegender.training.flops import forward_flops

    # the pass's cost, counted from the model as training's is (cost.features_tflop)
    per_image = forward_flops(frozen, 1).total
    done = {**spec, "precision_used": precision, "splits": {}}
    start = time.perf_counter()
    splits = {split: load_split(data_dir, split)[0] for split in SPLITS}
    # progress as preprocess shows it: images (each face and its mirror) through the base
    bar = tqdm(total=2 * sum(len(images) for images in splits.values()), mininterval=2, unit="img",
               desc=f"features {family.pretrained}", disable=not log.isEnabledFor(logging.INFO))
    for split, images in splits.items():
        shape = (len(images), *frozen.output.shape[1:])
        files = [np.lib.format.open_memmap(out / f"{split}_features{suffix}.npy", "w+", np.float16, shape)
                 for suffix in ("", "_flip")]
        clipped = 0
        for begin in range(0, len(images), batch_size):
            rows = np.arange(begin, min(begin + batch_size, len(images)))
            x = images.take(np.resize(rows, batch_size))  # one batch shape: traced once
            for file, batch in zip(files, (x, x[:, :, ::-1])):  # the face, its mirror image
                f = np.asarray(frozen.predict_on_batch(batch), dtype=np.float32)[:len(rows)]
                clipped += int(np.count_nonzero(np.abs(f) > FLOAT16_MAX))
                file[begin:begin + len(rows)] = np.clip(f, -FLOAT16_MAX, FLOAT16_MAX)
            bar.update(2 * len(rows))
        for file in files:
            file.flush()
        if clipped:
            log.warning("%s: %d feature values beyond float16's range were clipped", split, clipped)
        done["splits"][split] = {"faces": len(images), "shape": list(shape[1:])}
    bar.close()
    done["seconds"] = round(time.perf_counter() - start, 1)
    done["tflop"] = round(per_image * 2 * sum(len(images) for images in splits.values()) / 1e12, 6)
    write_spec(out / SPEC, done)
    return done


# --- reading the cache --------------------------------------------------------------------------

def cached_gender_probability(model, pairs: "FlipPairs", batch_size: int = 256) -> np.ndarray:
    """P(female) (N,) of the faces of cached ``pairs``, each averaged with its mirror image's, by
    ``model``'s head: what ``predict_outputs(model, images, tta_flip=True)`` gives from the images,
    up to float16 rounding of the features, without running the base again."""
    head, rows = head_model(model, pairs.backbone, pairs.cut), np.arange(len(pairs))
    out = [np.mean([np.asarray(head(part.take(rows[i:i + batch_size]), training=False)["gender"],
                               dtype=np.float64).reshape(-1) for part in (pairs.faces, pairs.mirrors)], axis=0)
           for i in range(0, len(rows), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)


class FlipPairs:
    """Each face's features and its mirror image's, (N, H, W, K) float16 each, read a batch at a
    time: :meth:`take` picks, per row, the face's (flip 0) or the mirror's (flip 1). Indexing and
    :meth:`concat` act on both alike, so subsampling and a final fit's train + val see the pairs
    as the images."""
    flip_pairs = True  # agegender.data.datasets.make_dataset: pick one of the pair per face

    def __init__(self, faces: ImageFiles, mirrors: ImageFiles, backbone: str | None = None,
                 cut: str | None = None):
        if faces.shape != mirrors.shape:
            raise ValueError(f"faces {faces.shape} and mirror images {mirrors.shape} differ")
        self.faces, self.mirrors = faces, mirrors
        self.backbone, self.cut = backbone, cut  # whose features, cut where (frozen_model's)

    def __len__(self) -> int:
        return len(self.faces)

    @property
    def shape(self):
        return self.faces.shape

    @property
    def dtype(self):
        return self.faces.dtype

    def __getitem__(self, key) -> FlipPairs:
        return FlipPairs(self.faces[key], self.mirrors[key], self.backbone, self.cut)

    def take(self, indices, flips=None) -> np.ndarray:
        """Rows ``indices`` (B,): the face's features, or the mirror's where ``flips`` (B,) is true."""
        indices = np.asarray(indices).reshape(-1)
        out = self.faces.take(indices)
        if flips is not None and np.any(flips):
            flips = np.asarray(flips, dtype=bool).reshape(-1)
            out[flips] = self.mirrors.take(indices[flips])
        return out

    @classmethod
    def concat(cls, parts: list[FlipPairs]) -> FlipPairs:
        return cls(ImageFiles.concat([p.faces for p in parts]), ImageFiles.concat([p.mirrors for p in parts]),
                   parts[0].backbone, parts[0].cut)


class FeatureCache:
    """The features stage's output folder, checked against the spec the recipe asks for."""

    def __init__(self, folder: str | Path, expected: dict | None = None):
        self.folder = Path(folder)
        self.spec = read_spec(self.folder / SPEC)
        if self.spec.get("backbone") is None:
            raise FeaturesError(f"{self.folder} holds no features (the features stage ran for a model "
                                "that trains from images): run dvc repro features")
        if expected is not None:
            got = {k: self.spec.get(k) for k in expected}
            if got != expected:
                raise FeaturesError(f"{self.folder} holds features of other settings ({got} != "
                                    f"{expected}): run dvc repro features")

    def split(self, name: str) -> FlipPairs:
        paths = [self.folder / f"{name}_features{s}.npy" for s in ("", "_flip")]
        for path in paths:
            if not path.is_file():
                raise FeaturesError(f"cached features not found: {path} (run: dvc repro features)")
        return FlipPairs(ImageFiles([paths[0]]), ImageFiles([paths[1]]), self.spec["backbone"],
                         self.spec.get("cut"))

    def head(self, model):
        """The model that trains from these features: :func:`head_model` at their cut."""
        return head_model(model, self.spec["backbone"], self.spec.get("cut"))

    def load_base(self, model) -> None:
        """The base's weights the features came from, into ``model``'s base layer."""
        model.get_layer(self.spec["backbone"]).load_weights(self.folder / BASE_WEIGHTS)
