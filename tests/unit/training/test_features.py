"""Cached frozen features of the transfer families (agegender/training/features.py): what they depend
on, how they are read (face or mirror image per face and epoch), and that a head trained from them
is the frozen model trained on the images. Tiny synthetic arrays, random (weights=None) bases."""
import json
import logging

import numpy as np
import pytest
import tensorflow as tf

from agegender.data.arrays import ImageFiles, load_split
from agegender.data.images import get_profile
from agegender.model.families import check_params, get_family
from agegender.params import ParamsError, parse_params
from agegender.data.datasets import make_dataset
from agegender.training.features import FeatureCache, FeaturesError, FlipPairs, compute_features, feature_spec
from synthetic import processed_arrays
from numerics import same_run

BASE = {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3, "lr_schedule": "plateau",
        "early_stopping_patience": 5, "precision": "float32", "augment": {"flip": False},
        "architecture": {"weights": None}, "features": "cached"}


def params_for(name="vgg19", seed=42, **settings):
    return parse_params({"data": {"source": "x"}, "model": name, "train": {"seed": seed},
                         "models": {name: {**BASE, **settings}}})


def arrays(folder, name="vgg19", n=(8, 4), seed=0):
    """Train / val arrays of random faces of ``name``'s profile, as preprocess writes them."""
    return processed_arrays(folder, get_profile(get_family(name).profile).shape, n, seed)


def test_the_spec_holds_what_the_features_depend_on_and_nothing_else(tmp_path):
    spec = feature_spec(params_for())
    assert spec == {"backbone": "vgg19", "profile": "rgb70", "precision": "float32", "weights": None,
                    "seed": 42}
    # head settings leave it as it is; the seed of a random base, the weights, the precision do not
    for head_only in ({"learning_rate": 0.5}, {"epochs": 7}, {"loss_weights": {"age": 1, "gender": 3}},
                      {"architecture": {"weights": None, "dense_units": [8]}}):
        assert feature_spec(params_for(**head_only)) == spec
    assert feature_spec(params_for(seed=1)) != spec
    assert feature_spec(params_for(precision="mixed_bfloat16")) != spec
    file = tmp_path / "vgg19.h5"
    file.write_bytes(b"weights")
    local = feature_spec(params_for(architecture={"weights": str(file)}))
    assert local["weights"] == "file" and "seed" not in local and len(local["weights_sha256"]) == 64
    assert feature_spec(params_for(seed=1, architecture={"weights": str(file)})) == local
    # a model trained from images needs no features, whatever its settings
    assert feature_spec(params_for(features="images")) == {"backbone": None}
    assert feature_spec(parse_params({"data": {"source": "x"}, "model": "compact"})) == {"backbone": None}


def test_cached_features_are_refused_where_they_cannot_apply():
    with pytest.raises(ParamsError, match="models.compact.features: cached needs a transfer family"):
        check_params(parse_params({"data": {"source": "x"}, "models": {"compact": {"features": "cached"}}}))
    with pytest.raises(ParamsError, match="mixup"):
        params_for(mixup=0.2)
    with pytest.raises(ParamsError, match="calibration_holdout takes faces out"):
        params_for(calibration_holdout=0.1, final_fit=True, lr_schedule="cosine")


def test_the_feature_pass_shows_its_progress_in_images(tmp_path, caplog, capsys):
    data = arrays(tmp_path / "data")
    params = params_for()
    caplog.set_level(logging.INFO, logger="agegender.training.features")  # as the stage logs
    compute_features(params, data, tmp_path / "features", feature_spec(params), batch_size=4)
    err = capsys.readouterr().err
    assert "features vgg19" in err and "24/24" in err  # (8 train + 4 val faces) x face and mirror


def _pairs(tmp_path, n=6):
    faces = np.arange(n * 2, dtype=np.float16).reshape(n, 1, 1, 2)
    np.save(tmp_path / "f.npy", faces)
    np.save(tmp_path / "m.npy", -faces)
    return FlipPairs(ImageFiles([tmp_path / "f.npy"]), ImageFiles([tmp_path / "m.npy"]))


def test_flip_pairs_read_the_face_or_its_mirror_and_index_like_images(tmp_path):
    pairs = _pairs(tmp_path)
    got = pairs.take([4, 1, 2], [True, False, True])
    assert got.dtype == np.float16 and got[:, 0, 0, 0].tolist() == [-8, 2, -4]
    assert pairs.take([3])[0, 0, 0, 1] == 7  # no flips: the face
    view = FlipPairs.concat([pairs[[0, 5]], pairs[1:2]])
    assert len(view) == 3 and view.take([1, 2], [True, True])[:, 0, 0, 0].tolist() == [-10, -2]


def test_training_batches_flip_at_random_per_face_and_epoch_and_repeat(tmp_path):
    pairs = _pairs(tmp_path, n=40)
    target = {"gender": np.zeros((40, 1), np.float32)}

    def epoch_values(epoch):
        ds = make_dataset(pairs, target, 8, shuffle=True, seed=3, epochs=range(epoch, epoch + 1))
        x = np.concatenate([b[0].numpy() for b in ds])
        return x[:, 0, 0, 1]

    first, again, resumed = epoch_values(0), epoch_values(0), epoch_values(1)
    assert np.array_equal(first, again)  # from (seed, epoch) alone: a resumed run sees the same
    assert sorted(np.abs(first).tolist()) == list(range(1, 80, 2))  # every face once, either way
    flipped = first < 0
    assert 5 < flipped.sum() < 35  # both faces and mirror images
    assert not np.array_equal(np.sign(first[np.argsort(np.abs(first))]),
                              np.sign(resumed[np.argsort(np.abs(resumed))]))  # new draws each epoch
    val = np.concatenate([b[0].numpy() for b in make_dataset(pairs, target, 8)])
    assert (val[:, 0, 0, 1] > 0).all()  # validation reads the faces only


def _train(data, tmp_path, params, features=None, live="live", backup=None):
    from agegender.training.fit import train_model

    return train_model(params.model, params.recipe, params.train.seed, load_split(data, "train"),
                       load_split(data, "val"), tmp_path / live, verbose=0, features=features,
                       backup_dir=backup)


@pytest.mark.slow
def test_a_head_trained_from_cached_features_is_the_frozen_model_trained_on_images(tmp_path):
    data = arrays(tmp_path / "data")
    params = params_for()
    # batches of 3: train's 8 faces in two full batches and a partial one, val's 4 in a full batch
    # and a partial one, so the rows of every batch, faces and mirror images, land where they
    # belong (checked below)
    spec = compute_features(params, data, tmp_path / "features", feature_spec(params), batch_size=3)
    assert spec["splits"] == {"train": {"faces": 8, "shape": [2, 2, 512]},
                              "val": {"faces": 4, "shape": [2, 2, 512]}}
    cache = FeatureCache(tmp_path / "features", feature_spec(params))
    stored = np.load(tmp_path / "features" / "val_features_flip.npy")
    assert stored.dtype == np.float16 and stored.shape == (4, 2, 2, 512)
    cached, summary = _train(data, tmp_path, params, cache, "live_cached")
    images, _ = _train(data, tmp_path, params, None, "live_images")  # same recipe, no cache
    assert summary.epochs_run == 1
    x = np.load(data / "val_images.npy")
    base = get_family("vgg19").pretrained
    for a, b in zip(cached.get_layer(base).get_weights(), images.get_layer(base).get_weights()):
        assert np.array_equal(a, b)  # the frozen part did not train, and is the same base
    a, b = cached.predict(x, verbose=0), images.predict(x, verbose=0)
    for key in ("age", "gender"):  # the same head training, but for float16 features
        np.testing.assert_allclose(a[key], b[key], atol=2e-3)
    # the saved model is the whole image model: what the features stage computed, then the head
    from agegender.training.features import frozen_model, head_model

    frozen = frozen_model(cached)
    computed = {}  # (split, suffix) -> the frozen part's features of its faces or mirror images
    for split in ("val", "train"):
        pixels = np.load(data / f"{split}_images.npy").astype("float32")
        for suffix, batch in (("", pixels), ("_flip", pixels[:, :, ::-1])):  # row i: face i's mirror
            computed[split, suffix] = frozen.predict(batch, verbose=0)
            np.testing.assert_allclose(computed[split, suffix],
                                       np.load(tmp_path / "features" / f"{split}_features{suffix}.npy"),
                                       rtol=2e-3, atol=1e-2)
    feats = computed["val", ""]
    assert not np.allclose(computed["val", "_flip"], feats, rtol=2e-3, atol=1e-2)  # a face's own fails
    np.testing.assert_allclose(head_model(cached).predict(feats, verbose=0)["age"], a["age"], atol=1e-5)
    # the gender temperature of a validation run is fitted on the head's reading of val's cached
    # features (face and mirror averaged): what the images give, without the base
    from agegender.serving.inference import predict_outputs
    from agegender.training.features import cached_gender_probability

    np.testing.assert_allclose(cached_gender_probability(cached, cache.split("val"), batch_size=3),
                               predict_outputs(cached, x, 4, tta_flip=True)["gender"], atol=2e-3)


@pytest.mark.slow
def test_cached_training_resumes_to_the_same_model(tmp_path):
    """Interrupted after epoch 1 of 3 (an exception, as Ctrl-C), resumed from the backup: the
    same model as a run that was not interrupted, flips included."""
    import keras

    data = arrays(tmp_path / "data")
    params = params_for(epochs=3, augment={"flip": True}, architecture={"weights": None, "dense_units": [16]})
    compute_features(params, data, tmp_path / "features", feature_spec(params))
    cache = FeatureCache(tmp_path / "features")
    whole, _ = _train(data, tmp_path, params, cache, "live_whole", tmp_path / "backup_whole")

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    fit = keras.Model.fit
    keras.Model.fit = lambda self, *a, callbacks=(), **k: fit(self, *a, callbacks=[*callbacks, Stop()], **k)
    try:
        with pytest.raises(KeyboardInterrupt):
            _train(data, tmp_path, params, cache, "live_resumed", tmp_path / "backup")
    finally:
        keras.Model.fit = fit
    assert (tmp_path / "backup" / "frozen" / "latest.weights.h5").is_file()
    resumed, summary = _train(data, tmp_path, params, cache, "live_resumed", tmp_path / "backup")
    assert summary.resumed and summary.epochs_run == 3
    x = np.load(data / "val_images.npy")
    assert same_run(whole.predict(x, verbose=0)["age"], resumed.predict(x, verbose=0)["age"])


def test_features_of_other_settings_are_refused(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({"backbone": "vgg19", "seed": 1}))
    with pytest.raises(FeaturesError, match="other settings"):
        FeatureCache(tmp_path, {"backbone": "vgg19", "seed": 2})
    (tmp_path / "spec.json").write_text(json.dumps({"backbone": None}))
    with pytest.raises(FeaturesError, match="holds no features"):
        FeatureCache(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "vgg19", "efficientnetv2_b0", "face_mobilenet"])
def test_every_transfer_family_builds_under_mirrored_strategy(name, tmp_path):
    """The tf.distribute code path of the train stage (one CPU device: one replica), random base;
    the head from cached features trains a step under it."""
    from agegender.training.setup import setup_training

    data = arrays(tmp_path / "data", name, n=(4, 2))
    params = params_for(name)
    compute_features(params, data, tmp_path / "features", feature_spec(params))
    setup = setup_training(name, params.recipe, 0, load_split(data, "train"), load_split(data, "val"),
                           strategy="mirrored", features=FeatureCache(tmp_path / "features"))
    assert isinstance(setup.strategy, tf.distribute.MirroredStrategy)
    (frozen,) = setup.phases  # no fine_tune: one phase, the head from the cache
    assert (frozen.name, frozen.model, frozen.from_features) == ("frozen", setup.head, True)
    base = setup.model.get_layer(get_family(name).pretrained)
    before, base_before = ([w.copy() for w in m.get_weights()] for m in (setup.model, base))
    setup.head.fit(frozen.train_data(0, 1), steps_per_epoch=setup.steps_per_epoch, verbose=0)
    changed = [not np.array_equal(a, b) for a, b in zip(before, setup.model.get_weights())]
    assert any(changed)  # the head's weights are the image model's
    assert all(np.array_equal(a, b) for a, b in zip(base_before, base.get_weights()))


@pytest.mark.slow
def test_the_base_top_layers_train_from_a_cache_cut_below_them_and_the_saved_model_reads_images(tmp_path):
    """cached_top: the features stage caches the input of the face base's last pair; training
    from that cache trains the pair and the head (nothing else of the base), and the saved image
    model gives what the cache and the trained top give (random base, tiny arrays)."""
    from agegender.serving.inference import predict_outputs
    from agegender.training.features import frozen_model

    from agegender.pretrained.hse_mobilenet import hse_mobilenet

    top = ["conv_dw_13", "conv_pw_13"]
    data = arrays(tmp_path / "data", "face_mobilenet", n=(6, 3))
    # a random base that is alive (Keras' zero biases and ReLU6 leave its last maps at 0): He
    # kernels, small positive biases, as a weights file of the base
    base = hse_mobilenet()
    rng = np.random.default_rng(0)
    for layer in base.layers:
        if layer.weights:
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:-1]) if "pw" in layer.name or layer.name == "conv1" else 9
            layer.set_weights([rng.normal(0, np.sqrt(2 / fan_in), kernel.shape).astype("float32"),
                               np.full(bias.shape, 0.05, "float32")])
    base.save_weights(tmp_path / "alive.weights.h5")
    alive = {"weights": str(tmp_path / "alive.weights.h5")}
    params = params_for("face_mobilenet", cached_top=top, learning_rate=0.05, architecture=alive)
    spec = feature_spec(params)
    assert spec["cut"] == "conv_dw_13"
    assert spec != feature_spec(params_for("face_mobilenet", architecture=alive))
    assert feature_spec(params_for("face_mobilenet", cached_top=top, epochs=3, architecture=alive)) == spec
    done = compute_features(params, data, tmp_path / "features", spec)
    assert done["splits"]["val"] == {"faces": 3, "shape": [7, 7, 1024]}
    assert np.load(tmp_path / "features" / "val_features.npy").std() > 0.01  # the base is alive
    cache = FeatureCache(tmp_path / "features", spec)
    from agegender.model.build import build_model

    untrained = build_model("face_mobilenet", params.recipe.model_copy(update={"architecture": {"weights": None}}), 0)
    cache.load_base(untrained)  # the base the features came from
    base0 = {w.path: np.asarray(w) for w in untrained.get_layer("hse_mobilenet").weights}
    model, summary = _train(data, tmp_path, params, cache, "live1")
    base1 = {w.path: np.asarray(w) for w in model.get_layer("hse_mobilenet").weights}
    moved = sorted({path.split("/")[-2] for path in base0 if not np.array_equal(base0[path], base1[path])})
    assert moved == top  # the pair trained from the cache, the rest of the base did not
    assert summary.train_tflop > 0
    x = np.load(data / "val_images.npy")
    feats = frozen_model(model, "hse_mobilenet", "conv_dw_13").predict(x.astype("float32"), verbose=0)
    np.testing.assert_allclose(feats, np.load(tmp_path / "features" / "val_features.npy"), rtol=2e-3, atol=1e-2)
    from agegender.training.flops import forward_flops

    frozen = frozen_model(model, "hse_mobilenet", "conv_dw_13")
    assert done["tflop"] == round(forward_flops(frozen, 1).total * 2 * 9 / 1e12, 6) > 0  # 9 faces x 2
    from_cache = cache.head(model).predict(feats, verbose=0)["age"]
    np.testing.assert_allclose(predict_outputs(model, x, 3)["age"], from_cache, atol=1e-5)
    with pytest.raises(ParamsError, match="cached_top"):
        params_for("face_mobilenet", cached_top=top, features="images", architecture=alive)


def test_an_unpacked_package_folder_is_hashed_by_its_files(tmp_path):
    """weights: a folder (the package unpacked by hand): the spec hashes its files and names."""
    from agegender.training.feature_spec import file_sha256

    folder = tmp_path / "pkg"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "a.bin").write_bytes(b"1")
    first = file_sha256(folder)
    (folder / "models" / "a.bin").write_bytes(b"2")
    second = file_sha256(folder)
    (folder / "models" / "a.bin").rename(folder / "models" / "b.bin")
    assert len({first, second, file_sha256(folder)}) == 3
    spec = feature_spec(params_for("face_mobilenet", architecture={"weights": str(folder)}))
    assert spec["weights"] == "file" and spec["weights_sha256"] == file_sha256(folder)
