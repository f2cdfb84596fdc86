"""Predict age and gender on new pictures: ``python -m stages.predict PATH... [options]``.

Files and folders (searched recursively for image files) go through the same decoding and pixel
conversion as training (:mod:`stages.images`). Photos are searched for faces with OpenCV's Haar
cascade and each face is cut out like a UTKFace chip (:mod:`stages.faces`); ``--no-detect`` takes
each image as a face crop already. One record per face, or one record with an ``error`` for a file
that could not be used; the exit status is 1 when any file failed, 2 when nothing could run.

Python API::

    from stages.predict import predict, Predictor
    records = predict(["photo.jpg", "folder/"])          # model loaded for this call
    p = Predictor("models/model.keras")                 # or: loaded once, used many times
    records = p.predict([pil_image, "crop.png"], detect=False)
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from PIL import Image, ImageOps

from stages.bins import FIVE_YEAR
from stages.faces import DETECT_MAX_SIDE, Box, Detector, DetectorUnavailable, HaarDetector, crop_chip
from stages.images import ImageDecodeError, Profile, decode, get_profile, to_array, to_mode
from stages.registry import SPECS, ModelSpec, get_spec

DEFAULT_MODEL = "models/model.keras"
SIDECAR = "train_summary.json"  # written by the train stage beside the model: {"model": name, ...}
# Folders are searched for these; a file named on the command line is tried whatever its name.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
FIELDS = ["file", "face", "box", "age", "age_group", "bin", "gender", "gender_probability", "error"]
CHUNK = 256  # faces per model call (at least one batch)
NO_FACE = "no face found (if the image is already a face crop, use --no-detect / detect=False)"


class SetupError(RuntimeError):
    """Prediction cannot start at all: missing model, unknown model family, no detector."""


# --- which model family a saved model is -------------------------------------------------------

def _model_signature(model) -> tuple[tuple, int]:
    """(input shape without batch, number of age units) of a loaded multi-task model."""
    try:
        age_units = int(model.get_layer("age").output.shape[-1])
    except ValueError as exc:
        raise SetupError(f"the model has no 'age' output layer; is it one of this project's? "
                         f"({exc})") from None
    return tuple(int(d) for d in model.input_shape[1:]), age_units


def _fits(spec: ModelSpec, signature) -> bool:
    return (get_profile(spec.profile).shape, spec.age_output.units) == signature


def resolve_spec(model, model_path=None, model_name: str | None = None,
                 params_path=None) -> tuple[ModelSpec, str]:
    """Which registry family ``model`` is, and how we know. A saved ``.keras`` file does not say,
    so look, in order, at: ``model_name`` given by the caller; ``train_summary.json`` beside the
    model file (written with it by the train stage); ``model:`` in the params file; and finally
    the only family whose input shape and age units match the model. Every answer is checked
    against the model's shapes, so a stale sidecar or params file is caught, not trusted."""
    signature = _model_signature(model)
    claims = []
    if model_name:
        claims.append((model_name, "--model-name"))
    if model_path is not None:
        sidecar = Path(model_path).parent / SIDECAR
        if sidecar.is_file():
            try:
                claims.append((json.loads(sidecar.read_text())["model"], str(sidecar)))
            except (ValueError, KeyError, TypeError):
                pass  # an unreadable sidecar is as good as none: the checks below still apply
    if params_path is not None and Path(params_path).is_file():
        from stages.config import load_params

        name = load_params(params_path).get("model")
        if name:
            claims.append((name, str(params_path)))
    for name, source in claims:
        try:
            spec = get_spec(name)
        except ValueError as exc:
            raise SetupError(f"{source}: {exc}") from None
        if _fits(spec, signature):
            return spec, source
        if source == "--model-name":
            raise SetupError(f"--model-name {name} reads {get_profile(spec.profile).shape} with "
                             f"{spec.age_output.units} age units, but the model reads {signature[0]} "
                             f"with {signature[1]}")
    matches = [s for s in SPECS.values() if _fits(s, signature)]
    if len(matches) == 1:
        return matches[0], "input shape and age units"
    said = "; ".join(f"{src} says {n!r}, which does not fit" for n, src in claims)
    raise SetupError(f"cannot tell which model family the model is (input {signature[0]}, "
                     f"{signature[1]} age units){': ' + said if said else ''}; "
                     f"pass --model-name, one of {sorted(SPECS)}")


# --- inputs -------------------------------------------------------------------------------------

@dataclass
class _Item:
    name: str
    source: object  # Path, bytes, PIL image or array; None with an error
    error: str | None = None


@dataclass
class _Prepared:
    name: str
    boxes: list[Box] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


def expand(images: Iterable) -> list[_Item]:
    """Inputs -> items in order. Paths to folders become their image files, recursively and
    sorted (hidden files and folders skipped); a missing path becomes an error item."""
    if isinstance(images, (str, os.PathLike, bytes, Image.Image, np.ndarray)):
        images = [images]
    items = []
    for i, obj in enumerate(images):
        if isinstance(obj, (str, os.PathLike)):
            path = Path(obj)
            if path.is_dir():
                found = sorted(p for p in path.rglob("*")
                               if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                               and not any(part.startswith(".") for part in p.relative_to(path).parts))
                items.extend(_Item(str(p), p) for p in found)
                if not found:
                    items.append(_Item(str(path), None, "no image files in this folder (looked for "
                                       f"{', '.join(sorted(IMAGE_SUFFIXES))})"))
            elif path.exists():
                items.append(_Item(str(path), path))
            else:
                items.append(_Item(str(path), None, "no such file or folder"))
        elif isinstance(obj, bytes):
            items.append(_Item(f"<bytes {i}>", obj))
        elif isinstance(obj, Image.Image):
            items.append(_Item(getattr(obj, "filename", "") or f"<image {i}>", obj))
        elif isinstance(obj, np.ndarray):
            items.append(_Item(f"<array {i}>", obj))
        else:
            raise TypeError(f"cannot predict on {type(obj).__name__}: give paths, bytes, "
                            "PIL images or uint8 arrays")
    return items


def _open(item: _Item) -> Image.Image:
    src = item.source
    if isinstance(src, Path):
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"cannot read file ({exc.strerror or exc})") from exc
        return decode(data, item.name)
    if isinstance(src, bytes):
        return decode(src, item.name)
    if isinstance(src, np.ndarray):
        channels = src.shape[2] if src.ndim == 3 else 1
        if src.dtype != np.uint8 or src.ndim not in (2, 3) or channels not in (1, 3, 4):
            raise ImageDecodeError(f"expected a uint8 array (H, W), (H, W, 1|3|4), got "
                                   f"{src.dtype} {src.shape}")
        return Image.fromarray(src[:, :, 0] if src.ndim == 3 and src.shape[2] == 1 else src)
    return ImageOps.exif_transpose(src)  # no-op unless it still carries an EXIF orientation


def _message(exc: Exception, name: str) -> str:
    text = str(exc)
    return text[len(name) + 2:] if text.startswith(f"{name}: ") else text


def prepare(item: _Item, profile: Profile, detector: Detector | None) -> _Prepared:
    """Decode one input and cut its faces into model-ready arrays; errors are kept, not raised."""
    out = _Prepared(item.name, error=item.error)
    if out.error:
        return out
    try:
        img = to_mode(_open(item), profile.channels)
        if detector is None:
            out.boxes = [Box(0, 0, img.width, img.height)]
            out.arrays = [to_array(img, profile)]
        else:
            out.boxes = list(detector(img))
            out.arrays = [to_array(crop_chip(img, b), profile) for b in out.boxes]
            if not out.boxes:
                out.error = NO_FACE
    except DetectorUnavailable:
        raise
    except Exception as exc:  # one bad file must not stop the others: report it with its record
        out.error = _message(exc, item.name) if isinstance(exc, ImageDecodeError) \
            else f"{type(exc).__name__}: {exc}"
        out.boxes, out.arrays = [], []
    return out


# --- prediction ---------------------------------------------------------------------------------

class Predictor:
    """A model loaded once (Keras safe mode) with its family, ready for any number of calls.

    ``model`` is a ``.keras`` path or a loaded Keras model; ``model_name`` / ``params`` say which
    family it is when ``train_summary.json`` is not beside it (see :func:`resolve_spec`).
    ``detector`` replaces the Haar cascade with any ``callable(PIL image) -> [Box]``.
    ``batch_size`` faces go through the network at once, ``chunk`` faces per model call.
    """

    def __init__(self, model=DEFAULT_MODEL, *, model_name: str | None = None,
                 params="params.yaml", detector: Detector | None = None,
                 batch_size: int = 64, tta: bool = True, workers: int | None = None,
                 chunk: int = CHUNK):
        if isinstance(model, (str, os.PathLike)):
            path = Path(model)
            if not path.is_file():
                raise SetupError(f"model file not found: {path} (train one with `dvc repro` or "
                                 "pass --model)")
            from stages.inference import load_model

            self.model = load_model(path)
        else:
            self.model, path = model, None
        self.spec, self.spec_source = resolve_spec(self.model, path, model_name, params)
        self.profile = get_profile(self.spec.profile)
        self._detector = detector
        self.batch_size, self.tta = int(batch_size), tta
        # faces per model call: each predict() call costs tens of ms on top of its batches, so
        # several batches go at once (measured on 2 cores: 250 crops/s in calls of 64, 390 of 256)
        self.chunk = max(1, int(chunk))
        self.workers = workers or os.cpu_count() or 1

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = HaarDetector()  # raises DetectorUnavailable with the fix
        return self._detector

    def predict(self, images, detect: bool = True) -> list[dict]:
        """Records (see :data:`FIELDS`) for ``images``: paths (files or folders), encoded bytes,
        PIL images or uint8 arrays. One per face found, in input order; failed inputs give one
        record with ``error`` set."""
        return list(self.iter_records(images, detect))

    def iter_records(self, images, detect: bool = True) -> Iterator[dict]:
        """Like :meth:`predict` but yields records as batches finish. Decoding and face finding run
        on ``workers`` threads (PIL and OpenCV release the GIL) a window ahead of the model."""
        detector = self.detector if detect else None
        items = iter(expand(images))
        window = self.chunk + 4 * self.workers
        pending: list[_Prepared] = []
        faces = 0
        with ThreadPoolExecutor(self.workers) as pool:
            futures = deque(pool.submit(prepare, it, self.profile, detector)
                            for it in _take(items, window))
            while futures:
                prepared = futures.popleft().result()
                for it in _take(items, 1):
                    futures.append(pool.submit(prepare, it, self.profile, detector))
                pending.append(prepared)
                faces += len(prepared.arrays)
                if faces >= self.chunk:
                    yield from self._run(pending)
                    pending, faces = [], 0
            yield from self._run(pending)

    def _run(self, pending: list[_Prepared]) -> Iterator[dict]:
        from stages.inference import decode_outputs, predict_outputs

        arrays = [a for p in pending for a in p.arrays]
        decoded = {}
        if arrays:
            outputs = predict_outputs(self.model, np.stack(arrays), self.batch_size, self.tta)
            decoded = decode_outputs(outputs, self.spec.age_output)
        k = 0
        for p in pending:
            if p.error:
                yield _record(p.name, error=p.error)
                continue
            for face, box in enumerate(p.boxes):
                yield self._face_record(p.name, face, box, decoded, k)
                k += 1

    def _face_record(self, name, face, box, decoded, k) -> dict:
        age = float(decoded["pred_age"][k])
        p_female = float(decoded["gender_prob"][k])
        female = p_female >= 0.5
        own_bin = None
        if "pred_bin" in decoded:
            own_bin = self.spec.age_output.scheme.labels()[int(decoded["pred_bin"][k])]
        return _record(name, face=face, box=box.as_list(), age=round(age, 1),
                       age_group=FIVE_YEAR.labels()[int(FIVE_YEAR.encode([age])[0])], bin=own_bin,
                       gender="female" if female else "male",
                       gender_probability=round(p_female if female else 1.0 - p_female, 4))


def _take(it: Iterator, n: int) -> list:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def _record(file, **values) -> dict:
    rec = dict.fromkeys(FIELDS)
    rec.update(file=file, **values)
    return rec


def predict(images, model=DEFAULT_MODEL, *, detect: bool = True, **options) -> list[dict]:
    """One-call API: load ``model`` (see :class:`Predictor` for ``options``) and predict ``images``.
    For many calls build a :class:`Predictor` once instead."""
    return Predictor(model, **options).predict(images, detect=detect)


# --- output and command line --------------------------------------------------------------------

CSV_FIELDS = ["file", "face", "box_x", "box_y", "box_w", "box_h", "age", "age_group", "bin",
              "gender", "gender_probability", "error"]


def write_records(records: list[dict], fmt: str, out) -> None:
    """Write records as CSV (the box as four columns) or as a JSON list to a text stream."""
    if fmt == "json":
        json.dump(records, out, indent=2)
        out.write("\n")
        return
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for rec in records:
        row = {k: v for k, v in rec.items() if k != "box"}
        box = rec["box"] or [None] * 4
        row.update(zip(("box_x", "box_y", "box_w", "box_h"), box))
        writer.writerow({k: "" if v is None else v for k, v in row.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stages.predict",
        description="Predict age and gender for the faces in images (files, or folders searched "
                    "recursively). Exit status: 0 all files used, 1 some file failed, 2 nothing ran.")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="saved .keras model (default %(default)s)")
    parser.add_argument("--model-name", choices=sorted(SPECS),
                        help="model family, when train_summary.json is not beside the model")
    parser.add_argument("--params", default="params.yaml",
                        help="params file whose `model:` names the family (default %(default)s)")
    parser.add_argument("--format", choices=["csv", "json"], default="csv")
    parser.add_argument("--output", help="write here instead of standard output")
    parser.add_argument("--no-detect", action="store_true",
                        help="images are face crops already: use each whole image as one face")
    parser.add_argument("--no-tta", action="store_true",
                        help="skip the mirrored second pass (twice as fast, as evaluated without it)")
    parser.add_argument("--detect-max-side", type=int, default=DETECT_MAX_SIDE,
                        help="search photos for faces shrunk to at most this many pixels "
                             "(default %(default)s; larger finds smaller faces, slower)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None,
                        help="threads decoding and finding faces (default: all cores)")
    args = parser.parse_args(argv)

    try:
        # the detector first: if it cannot run, say so before the model takes seconds to load
        detector = None if args.no_detect else HaarDetector(max_side=args.detect_max_side)
        predictor = Predictor(args.model, model_name=args.model_name, params=args.params,
                              detector=detector, batch_size=args.batch_size, tta=not args.no_tta,
                              workers=args.workers)
        records = []
        for rec in predictor.iter_records(args.paths, detect=not args.no_detect):
            if rec["error"]:
                print(f"predict: {rec['file']}: {rec['error']}", file=sys.stderr)
            records.append(rec)
    except (SetupError, DetectorUnavailable) as exc:
        print(f"predict: {exc}", file=sys.stderr)
        return 2

    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "w", newline="") as f:
            write_records(records, args.format, f)
    else:
        write_records(records, args.format, sys.stdout)
    failed = sorted({r["file"] for r in records if r["error"]})
    used = {r["file"] for r in records} - set(failed)
    faces = sum(1 for r in records if not r["error"])
    print(f"predict: {len(used) + len(failed)} files, {faces} faces, {len(failed)} failed "
          f"(model {predictor.spec.name}, known from {predictor.spec_source})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
