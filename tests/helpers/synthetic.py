"""Small synthetic UTKFace-style data sets for tests: random faces-that-are-not-faces with real-style names.

No UTKFace image or part of one is used: pixels are drawn from a seeded generator, with a bright
disc whose size grows with the age label, so a model has something learnable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The three malformed-name patterns found in the real archive.
MALFORMED = ["24_0_1_20170116220224657 .jpg.chip.jpg",  # space before the extension
             "39_1_20170116174525125.jpg.chip.jpg",  # missing race field
             "55_0_0_20170116232725357jpg.chip.jpg"]  # missing dot


def face(age: int, gender: int, rng: np.random.Generator, size: int = 200) -> Image.Image:
    arr = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    radius = 20 + age  # learnable signal: disc size follows age
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < radius ** 2
    arr[disc] = (200, 150 + 80 * gender, 120)
    return Image.fromarray(arr)


def make_utkface(folder: str | Path, n: int = 60, seed: int = 0, defects: bool = True) -> dict:
    """Write ``n`` valid images (plus, with ``defects``, malformed names, an out-of-range label,
    a truncated file and an exact duplicate) into ``folder``. Returns what was written, by kind."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {"valid": []}
    for i in range(n):
        age, gender, race = int(rng.integers(1, 90)), i % 2, int(rng.integers(0, 5))
        name = f"{age}_{gender}_{race}_2017011{i:010d}.jpg.chip.jpg"
        face(age, gender, rng).save(folder / name, quality=90)
        written["valid"].append(name)
    if defects:
        for name in MALFORMED:
            face(30, 0, rng).save(folder / name)
        written["malformed_name"] = list(MALFORMED)
        face(30, 0, rng).save(folder / "130_0_0_20170110000000001.jpg.chip.jpg")
        written["out_of_range"] = ["130_0_0_20170110000000001.jpg.chip.jpg"]
        good = (folder / written["valid"][0]).read_bytes()
        (folder / "33_1_2_20170110000000002.jpg.chip.jpg").write_bytes(good[: len(good) // 3])
        written["unreadable_image"] = ["33_1_2_20170110000000002.jpg.chip.jpg"]
        original = written["valid"][1]
        dup = original.rsplit("_", 1)[0] + "_99999999999999999.jpg.chip.jpg"  # sorts after it
        (folder / dup).write_bytes((folder / written["valid"][1]).read_bytes())
        written["duplicate"] = [dup]
    return written


def make_labelled(folder: str | Path, n: int = 12, seed: int = 0, race: bool = True) -> list[dict]:
    """Write a labelled set: ``n`` synthetic faces under ``folder/img/`` and ``folder/labels.csv``
    (file,age,gender[,race]; gender as words). Returns the rows written."""
    folder = Path(folder)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        age, gender = int(rng.integers(1, 90)), i % 2
        face(age, gender, rng).save(folder / "img" / f"{i:04d}.jpg", quality=90)
        row = {"file": f"img/{i:04d}.jpg", "age": age, "gender": ("male", "female")[gender]}
        if race:
            row["race"] = int(rng.integers(0, 5))
        rows.append(row)
    columns = ["file", "age", "gender"] + (["race"] if race else [])
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return rows


def processed_arrays(folder, shape, n=(12, 4), seed=0):
    """Train / val arrays of random uint8 faces of ``shape`` (S, S, C) and random label rows
    [age, gender, race], as the preprocess stage writes them into ``folder``; returns ``folder``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in zip(("train", "val"), n):
        np.save(folder / f"{split}_images.npy", rng.integers(0, 256, (count, *shape), dtype=np.uint8))
        labels = np.stack([rng.integers(1, 90, count), rng.integers(0, 2, count), np.zeros(count)], 1)
        np.save(folder / f"{split}_labels.npy", labels.astype(np.int16))
    return folder
