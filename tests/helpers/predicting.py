"""What the predictor tests share: a saved untrained ``compact`` model with its two heads sharpened
(weights x30), so different faces get clearly different (age, gender probability) pairs and a
record holding another face's prediction cannot go unseen; synthetic faces; records as CSV."""
from pathlib import Path

import numpy as np

from synthetic import face


def sharpened_model(folder: Path) -> Path:
    """An untrained compact network (the same weights every run), heads x30, saved in ``folder``."""
    import keras

    from agegender.model.build import build_model
    from agegender.params import Recipe
    from agegender.serving.saved import ModelInfo, save_model

    keras.utils.set_random_seed(0)  # the same untrained weights every run
    model = build_model("compact", Recipe(), seed=0)
    for head in ("age", "gender"):
        kernel, bias = model.get_layer(head).get_weights()
        model.get_layer(head).set_weights([kernel * 30, bias])
    save_model(model, folder / "model.keras", ModelInfo.for_family("compact", "float32"))
    return folder


def face_image(seed, size=120, age=None):
    rng = np.random.default_rng(seed)
    return face(age if age is not None else 10 + 15 * seed, seed % 2, rng, size=size)


def save_image(img, path, **kw):
    img.save(path, **kw)
    return path


def ok(records):
    return [r for r in records if not r["error"]]


def write_csv(records, out) -> None:
    """Records as the command line writes them (the streaming Writer), to a text stream."""
    from agegender.prediction import output

    writer = output.Writer(None, "csv", None, stream=out)
    writer.write(records)
    writer.close()


def assert_distinct(records):
    """Faces must get clearly different outputs, or a mix-up of records would go unseen."""
    for i, a in enumerate(records):
        for b in records[i + 1:]:
            assert (abs(a["age"] - b["age"]) > 0.5
                    or abs(a["gender_probability"] - b["gender_probability"]) > 0.005), (a, b)
