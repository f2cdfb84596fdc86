"""The seed variants' special parts: VGG preprocessing, two-phase fine-tuning, class and group
balancing inside a real training run, the final fit, the default precision. Transfer bases start
from random weights (their ImageNet weights: tests/unit/pretrained/test_imagenet.py)."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from agegender.data.arrays import load_split
from agegender.data.images import get_profile
from agegender.model import networks
from agegender.model.build import build_model
from agegender.model.families import get_family
from agegender.params import FineTune, Recipe
from agegender.serving.saved import ModelInfo, load_model, save_model
from agegender.training.fit import train_model
from agegender.training.phases import set_trainable, training_phases
from synthetic import processed_arrays
from numerics import same_run

FINE_TUNE = {"base": "vgg16", "frozen_epochs": 1, "unfreeze": ["block4_", "block5_"],
             "optimizer": "adamw", "learning_rate": 2e-5, "weight_decay": 0.004}


def test_vgg_preprocess_layer_is_keras_preprocess_input():
    x = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype("float32")
    expected = keras.applications.vgg16.preprocess_input(x.copy())
    assert np.allclose(np.asarray(networks.VGGPreprocess()(x)), expected, atol=1e-4)


def test_training_phases():
    plain = Recipe(epochs=4, optimizer="rmsprop", learning_rate=1e-3, lr_schedule="plateau")
    assert [name for name, _, _ in training_phases(plain)] == ["train"]
    tuned = plain.model_copy(update={"fine_tune": FineTune(**FINE_TUNE)})
    phases = training_phases(tuned)
    assert [(name, end) for name, end, _ in phases] == [("frozen", 1), ("fine_tune", 4)]
    assert (phases[0][2].optimizer, phases[0][2].learning_rate) == ("rmsprop", 1e-3)
    assert (phases[1][2].optimizer, phases[1][2].learning_rate) == ("adamw", 2e-5)
    only_frozen = training_phases(tuned.model_copy(update={"epochs": 1}))
    assert [name for name, _, _ in only_frozen] == ["frozen"]


def test_two_phase_trainable_switching():
    model = build_model("vgg16", Recipe(architecture={"weights": None}), seed=0)
    base = model.get_layer("vgg16")
    heads = {id(w) for w in model.trainable_weights} - {id(w) for w in base.weights}
    fine_tune = FineTune(**FINE_TUNE)

    set_trainable(model, fine_tune, "frozen")
    assert not base.trainable_weights
    assert {id(w) for w in model.trainable_weights} == heads  # only the heads train

    set_trainable(model, fine_tune, "fine_tune")
    trainable = {layer.name for layer in base.layers if layer.trainable_weights}
    assert trainable == {f"block{b}_conv{c}" for b in (4, 5) for c in (1, 2, 3)}
    assert len(base.trainable_weights) == 12  # 6 conv layers x (kernel, bias)
    assert {id(w) for w in model.trainable_weights} >= heads


def test_a_cached_top_recipe_trains_its_base_layers_in_the_frozen_phase_with_or_without_the_cache():
    """k-fold trains a cached_top recipe on the images (no cache): its frozen phase trains the
    same base layers as from the cache, and nothing else of the base."""
    from agegender.training.phases import Phase

    top = ["block5_conv3"]
    recipe = Recipe(architecture={"weights": None}, features="cached", cached_top=top, precision="float32")
    model = build_model("vgg16", recipe, seed=0)
    base = model.get_layer("vgg16")
    phase = Phase("frozen", 0, 1, model, model, get_family("vgg16"), recipe, recipe, None, None, None,
                  0, 1, tf.distribute.get_strategy())
    phase.prepare()
    assert {layer.name for layer in base.layers if layer.trainable_weights} == set(top)
    set_trainable(model, None, "frozen", "vgg16")  # without cached_top: the whole base frozen
    assert not base.trainable_weights


def test_vgg_model_saves_and_loads_in_safe_mode(tmp_path):
    model = build_model("vgg19", Recipe(architecture={"weights": None}), seed=0)
    path = tmp_path / "model.keras"
    save_model(model, path, ModelInfo.for_family("vgg19", "float32"))
    x = np.random.default_rng(0).integers(0, 256, (2, 70, 70, 3)).astype("uint8")
    a, b = model.predict(x, verbose=0), load_model(path)[0].predict(x, verbose=0)
    assert np.allclose(a["age"], b["age"], atol=1e-5)


def _processed(folder, shape, n=(12, 4), seed=0):
    return processed_arrays(folder, shape, n, seed)


def _train(data, tmp_path, name, seed=0, out="model.keras", live="live", **settings):
    """Train ``name`` on the arrays in ``data`` as the train stage does, save it; return the summary."""
    base = {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3, "lr_schedule": "plateau",
            "early_stopping_patience": 5, "augment": {"flip": False}}
    recipe = Recipe.model_validate({**base, **settings})
    model, summary = train_model(name, recipe, seed, load_split(data, "train"), load_split(data, "val"),
                                 tmp_path / live, verbose=0)
    save_model(model, tmp_path / out, ModelInfo.for_family(name, summary.precision))
    return summary


@pytest.mark.slow
def test_train_runs_both_phases_and_logs_every_epoch(tmp_path):
    data = _processed(tmp_path / "data", get_profile_shape("vgg16"), n=(8, 4))
    summary = _train(data, tmp_path, "vgg16", epochs=2, optimizer="rmsprop",
                     architecture={"weights": None}, fine_tune={**FINE_TUNE})
    assert summary.epochs_run == 2
    metrics = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert metrics["step"] == 1  # one DVCLive run across the two fit calls, one step per epoch
    assert (tmp_path / "model.keras").is_file()


@pytest.mark.slow
def test_class_balanced_training_and_subsampling(tmp_path):
    data = _processed(tmp_path / "data", get_profile_shape("ranges10"), n=(16, 6))
    summary = _train(data, tmp_path, "ranges10", class_balance=True, max_train_images=8,
                     max_val_images=4)
    assert summary.train_images == 8 and summary.epochs_run == 1


def test_group_balance_weighs_both_losses_and_multiplies_class_balance():
    from agegender.model.targets import balanced_sample_weights, group_sample_weights
    from agegender.training.phases import training_dataset

    family = get_family("compact")
    images = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)  # row i is all i
    labels = np.array([[25, 0, 0], [26, 0, 0], [27, 0, 0], [28, 0, 0], [70, 1, 2], [3, 1, 4]])
    plain = training_dataset(family, Recipe(batch_size=6), images, labels, 0, range(1))
    assert len(next(iter(plain))) == 2  # no weights unless asked for
    recipe = Recipe(batch_size=6, group_balance=0.5, class_balance=True)
    x, y, w = next(iter(training_dataset(family, recipe, images, labels, 0, range(1))))
    group = group_sample_weights(labels, 0.5)
    age = balanced_sample_weights(labels[:, 0], family.age_output)
    rows = x.numpy()[:, 0, 0, 0].astype(int)  # the batch is shuffled: each face's own row
    assert sorted(rows) == list(range(6))
    np.testing.assert_allclose(w["gender"].numpy(), group[rows], rtol=1e-6)
    np.testing.assert_allclose(w["age"].numpy(), (group * age)[rows], rtol=1e-6)
    # four men in one cell, two lone women: sqrt(4) = 2 times a man's weight each, mean 1
    assert w["gender"].numpy().max() == pytest.approx(1.5) and w["gender"].numpy().min() == pytest.approx(0.75)


def get_profile_shape(name):
    return get_profile(get_family(name).profile).shape


@pytest.mark.slow
def test_final_fit_trains_on_train_and_val_without_validation_curves(tmp_path):
    data = _processed(tmp_path / "data", get_profile_shape("compact"), n=(12, 6))
    summary = _train(data, tmp_path, "compact", epochs=2, lr_schedule="cosine", final_fit=True)
    assert summary.train_images == 18 and summary.final_fit is True
    assert summary.epochs_run == 2 and summary.best_val_age_mae is None
    curves = tmp_path / "live" / "plots" / "metrics"
    assert (curves / "train" / "age_mae.tsv").is_file()
    assert not (curves / "eval").exists()  # val is training data now: no "validation" curve


def test_final_fit_refuses_a_schedule_that_reads_val(tmp_path):
    data = _processed(tmp_path / "data", get_profile_shape("compact"), n=(8, 4))
    with pytest.raises(ValueError, match="final_fit needs lr_schedule: cosine"):
        _train(data, tmp_path, "compact", lr_schedule="plateau", final_fit=True)


@pytest.mark.slow
@pytest.mark.bf16
def test_the_default_precision_trains_deterministically_on_this_cpu(tmp_path):
    """Same params and data, same model, in the precision the default (``precision: auto``) picks
    on this CPU: bfloat16 compute where the CPU has native BF16, the documented float32 fallback
    where it has not (or oneDNN is capped below it); the saved model predicts in the same."""
    from agegender import hardware

    cpu, gpus = hardware.cpu_info(), hardware.gpu_info()
    expected = "mixed_bfloat16" if cpu.native_bf16() else "float32"
    if gpus:
        pytest.skip("on a GPU auto picks mixed_float16; this test is about CPUs")
    assert hardware.choose_precision("auto", cpu, gpus) == expected
    data = _processed(tmp_path / "data", get_profile_shape("compact"), n=(16, 4))
    x = np.load(data / "val_images.npy")
    outputs = []
    for i, seed in enumerate((0, 0, 1)):
        _train(data, tmp_path, "compact", seed, f"m{i}.keras", f"live{i}", epochs=2,
               lr_schedule="cosine", final_fit=True, precision="auto",
               architecture={"stage_blocks": [1, 1, 1, 1]}, augment={"flip": True, "translation": 0.06})
        model, info = load_model(tmp_path / f"m{i}.keras")
        assert info.precision == expected
        assert model.get_layer("stem_conv").compute_dtype == ("bfloat16" if cpu.native_bf16() else "float32")
        outputs.append(model.predict(x, verbose=0))
    for key in ("age", "gender"):
        assert same_run(outputs[0][key], outputs[1][key])
    assert not same_run(outputs[0]["age"], outputs[2]["age"])  # the seed does matter
