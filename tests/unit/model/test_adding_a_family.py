"""A model family added the way docs/models.md ("Adding a model family") says trains, saves, loads,
evaluates and predicts through the pipeline's own code, with no other change to the package.

The family is written here, not in the package: its builder (step 1, a function of
agegender/model/networks.py), its architecture schema (step 2, beside the families) and its
``Family`` entry (step 3, in ``FAMILIES``) are put in place with ``monkeypatch``, which is what the
edits to those two files amount to; its ``models.<name>`` block (step 4) is a params.yaml in a
temporary folder. This module imports no TensorFlow at the top, so the params check can import it
in a fresh interpreter.
"""
import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agegender.data.bins import FIVE_YEAR
from agegender.data.images import get_profile, load_array
from agegender.model import families
from agegender.model.families import Architecture, Count, Family, Rate
from agegender.model.targets import AgeOutput
from locations import HELPERS, ROOT
from synthetic import make_utkface

NAME = "tiny"


# step 1: the builder, with the standard signature (networks.py holds the real ones)
def tiny_cnn(input_shape, age_output: AgeOutput, augment: dict, seed: int, filters=8, dropout=0.1):
    """uint8 pixels (batch, 64, 64, 3) -> {"age": (batch, units), "gender": (batch, 1)}: one
    stride-4 conv layer, global average pooling, the shared heads."""
    import keras
    from keras import layers

    from agegender.model.augmentation import augmentation
    from agegender.model.networks import age_head, gender_head

    inputs = keras.Input(input_shape, name="image")
    x = augmentation(augment, seed)(inputs)
    x = layers.Rescaling(1 / 255.0, name="scale")(x)
    x = layers.Conv2D(filters, 3, strides=4, activation="relu", name="conv")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, seed=seed, name="dropout")(x)
    return keras.Model(inputs, {"age": age_head(x, age_output), "gender": gender_head(x)}, name="tiny_cnn")


# step 2: its architecture schema, the builder's keyword arguments and defaults
class TinyCnn(Architecture):
    """tiny_cnn: one conv layer."""
    filters: Count = 8
    dropout: Rate = 0.1


# step 3: its entry in FAMILIES (bins, so the own-bin scoring and the predictor's bin run too)
FAMILY = Family(NAME, "rgb64", AgeOutput("bins", FIVE_YEAR, "softmax"), "tiny_cnn", TinyCnn,
                "test family: one conv layer, softmax over 20 five-year groups")

# step 4: its recipe block (a couple of steps, float32 so the comparison below is exact)
BLOCK = {"epochs": 2, "batch_size": 8, "learning_rate": 0.01, "lr_schedule": "plateau",
         "precision": "float32", "augment": {"flip": True, "translation": 0.0},
         "architecture": {"filters": 6}}


def register(monkeypatch=None) -> None:
    """Steps 1 and 3 in place: the builder where the family names it, the entry in FAMILIES."""
    if monkeypatch is None:  # a fresh interpreter of its own (the params check below): no TF
        families.FAMILIES[NAME] = FAMILY
        return
    from agegender.model import networks

    monkeypatch.setitem(families.FAMILIES, NAME, FAMILY)
    monkeypatch.setattr(networks, FAMILY.builder, tiny_cnn, raising=False)


def _params_file(folder: Path, block: dict) -> Path:
    """The project's params.yaml with ``model: tiny`` and the family's block (step 4)."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["model"] = NAME
    raw["models"][NAME] = block
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _check_params(path: Path) -> subprocess.CompletedProcess:
    """The stages' params check in a fresh interpreter that has the family, as one added to
    families.py has it (load_family_params: params.yaml, then the check against the families)."""
    code = ("import json, sys; sys.path[:0] = sys.argv[2:]; import test_adding_a_family as t; "
            "t.register(); from agegender.model.families import load_family_params; "
            "p = load_family_params(sys.argv[1]); "
            "print(json.dumps([p.model, type(p.recipe.architecture).__name__, "
            "t.FAMILY.settings(p.recipe), p.recipe.epochs]))")
    here = Path(__file__).resolve().parent  # this module, imported there by its own name
    return subprocess.run([sys.executable, "-c", code, str(path), str(here), str(HELPERS)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_schema_is_the_builders_keyword_arguments():
    fixed = {"input_shape", "age_output", "augment", "seed"}
    keywords = {n: p.default for n, p in inspect.signature(tiny_cnn).parameters.items() if n not in fixed}
    assert keywords == {k: f.default for k, f in TinyCnn.model_fields.items()}


def test_its_params_block_is_typed_by_its_schema(tmp_path):
    done = _check_params(_params_file(tmp_path, BLOCK))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [NAME, "TinyCnn", {"filters": 6, "dropout": 0.1}, 2]
    typo = _check_params(_params_file(tmp_path, {**BLOCK, "architecture": {"filtres": 6}}))
    assert typo.returncode != 0
    assert "models.tiny.architecture.filtres: unknown key" in typo.stderr
    assert "tiny_cnn takes dropout, filters" in typo.stderr


def _faces(folder: Path, n: int, seed: int):
    """Synthetic UTKFace-named JPEGs -> (files, uint8 arrays (n, 64, 64, 3), label table), the
    arrays decoded as preprocess decodes them."""
    names = make_utkface(folder, n=n, seed=seed, defects=False)["valid"]
    files = [folder / name for name in names]
    profile = get_profile(FAMILY.profile)
    images = np.stack([load_array(f.read_bytes(), profile, f.name) for f in files])
    rows = [dict(zip(("age", "gender", "race"), map(int, name.split("_")[:3])), file=name) for name in names]
    labels = pd.DataFrame(rows)[["file", "age", "gender", "race"]]
    return files, images, labels


def test_a_family_added_the_documented_way_trains_saves_evaluates_and_predicts(tmp_path, monkeypatch):
    from agegender.evaluation.scoring import evaluate_model
    from agegender.params import ParamsError, Recipe
    from agegender.prediction.predictor import Predictor
    from agegender.serving.inference import predict_outputs
    from agegender.serving.saved import ModelInfo, load_model, save_model
    from agegender.training.fit import train_model

    register(monkeypatch)
    recipe = Recipe.model_validate(BLOCK)  # what load_params makes of step 4's block
    with pytest.raises(ParamsError, match=r"models\.tiny\.architecture\.filtres"):
        train_model(NAME, recipe.model_copy(update={"architecture": {"filtres": 6}}), 0,
                    (np.zeros((8, 64, 64, 3), np.uint8), np.ones((8, 3), np.int16)),
                    (np.zeros((8, 64, 64, 3), np.uint8), np.ones((8, 3), np.int16)), tmp_path / "no")

    def split(images, labels):
        return images, labels[["age", "gender", "race"]].to_numpy(np.int16)

    _, train_x, train_labels = _faces(tmp_path / "train", 24, seed=1)
    _, val_x, val_labels = _faces(tmp_path / "val", 8, seed=2)
    test_files, test_x, test_labels = _faces(tmp_path / "test", 10, seed=3)

    # the train stage's calls: train_model, then save_model with the family's ModelInfo
    model, summary = train_model(NAME, recipe, 0, split(train_x, train_labels), split(val_x, val_labels),
                                 tmp_path / "live", verbose=0)
    assert (summary.model, summary.epochs_run, summary.train_images) == (NAME, 2, 24)
    assert summary.parameters == model.count_params() and summary.best_val_age_mae is not None
    assert model.get_layer("conv").filters == 6  # the block's architecture, not the default
    path = tmp_path / "model.keras"
    save_model(model, path, ModelInfo.for_family(NAME, summary.precision))

    # loaded back in safe mode, it is the trained model
    loaded, info = load_model(path)
    assert (info.family, info.profile.name, info.age_output) == (NAME, "rgb64", FAMILY.age_output)
    trained_out, loaded_out = predict_outputs(model, test_x, 16), predict_outputs(loaded, test_x, 16)
    assert trained_out["age"].shape == (10, 20) and trained_out["gender"].shape == (10,)
    for key in ("age", "gender"):
        np.testing.assert_array_equal(loaded_out[key], trained_out[key])

    # the evaluate stage's scoring
    df, metrics, _ = evaluate_model(loaded, info.age_output, test_x, test_labels, batch_size=16,
                                    tta_flip=True, min_group_size=1)
    assert len(df) == metrics["test_images"] == 10
    assert df["pred_age"].between(0, 116).all() and df["gender_prob"].between(0, 1).all()
    assert set(df["pred_bin"]) <= set(FIVE_YEAR.labels())
    assert 0 <= metrics["age"]["mae"] <= 116 and 0 <= metrics["bins"]["accuracy"] <= 1

    # the predictor on the same files (detection off): the faces evaluation scored, read the same
    records = Predictor(str(path), batch_size=16, tta=True).predict([str(f) for f in test_files],
                                                                   detect=False)
    assert len(records) == 10 and not any(r["error"] for r in records)
    by_file = {Path(r["file"]).name: r for r in records}
    scored = df.set_index("file")
    for name, rec in by_file.items():
        assert 0 <= rec["age"] <= 116 and 0.5 <= rec["gender_probability"] <= 1
        assert rec["age"] == pytest.approx(scored.loc[name, "pred_age"], abs=0.051)
        p_female = scored.loc[name, "gender_prob"]
        assert rec["gender"] == ("female" if p_female >= 0.5 else "male")
        assert rec["bin"] == scored.loc[name, "pred_bin"]
