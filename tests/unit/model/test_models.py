"""Every registered model family builds, has the right output shapes and trains one step."""
import keras
import numpy as np
import pytest

from agegender.data.images import get_profile
from agegender.model import networks
from agegender.model.build import build_model
from agegender.model.families import FAMILIES, get_family
from agegender.params import ParamsError, Recipe
from agegender.data.datasets import make_dataset
from agegender.model.targets import AgeOutput, keras_targets
from agegender.training.phases import compile_model
from locations import ROOT

# no network in tests: VGG bases start from random weights (ImageNet loading is tested offline
# in tests/unit/pretrained/test_imagenet.py)
ARCHITECTURE = {"vgg16": {"weights": None}, "vgg19": {"weights": None}, "efficientnetv2_b0": {"weights": None},
                "face_mobilenet": {"weights": None}}


def recipe(**settings) -> Recipe:
    return Recipe.model_validate({"lr_schedule": "plateau", "learning_rate": 1e-3, **settings})


def _batch(name, n=4, seed=0):
    rng = np.random.default_rng(seed)
    shape = get_profile(get_family(name).profile).shape
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    labels = np.stack([rng.integers(1, 100, n), rng.integers(0, 2, n), rng.integers(0, 5, n)], 1)
    return x, labels.astype(np.int16)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_builds_and_trains_one_step(name):
    spec = get_family(name)
    model = build_model(name, recipe(architecture=ARCHITECTURE.get(name, {}),
                                     augment={"flip": True, "translation": 0.05}), seed=0)
    x, labels = _batch(name)
    out = model.predict(x, verbose=0)
    assert out["age"].shape == (len(x), spec.age_output.units)
    assert out["gender"].shape == (len(x), 1)
    assert ((out["gender"] >= 0) & (out["gender"] <= 1)).all()
    compile_model(model, spec, recipe(), steps_per_epoch=1)
    before = [w.copy() for w in model.get_weights()]
    model.fit(make_dataset(x, keras_targets(labels, spec.age_output), batch_size=4), epochs=1, verbose=0)
    changed = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert any(changed), "a training step must change the weights"


def test_every_variant_has_its_seed_profile_and_age_output():
    expected = {"sigmoid_bins": ("gray70", "bins", 20), "relu_regression": ("gray70", "regression", 1),
                "multitask": ("rgb128", "regression", 1), "small_multitask": ("rgb128", "regression", 1),
                "custom12": ("rgb224", "bins", 12), "ranges10": ("gray128", "bins", 10),
                "vgg16": ("rgb128", "regression", 1), "vgg19": ("rgb70", "bins", 20)}
    for name, (profile, kind, units) in expected.items():
        spec = get_family(name)
        assert (spec.profile, spec.age_output.kind, spec.age_output.units) == (profile, kind, units)
    assert get_family("sigmoid_bins").age_output.loss == "binary_crossentropy"
    assert get_family("relu_regression").age_output.activation == "relu"


def test_params_yaml_has_hyper_parameters_for_every_variant():
    from agegender.params import load_params

    params = load_params(ROOT / "params.yaml")
    assert set(FAMILIES) <= set(params.models)


def test_augmentation_is_inactive_at_inference():
    model = build_model("compact", recipe(augment={"flip": True, "translation": 0.2}), seed=0)
    x, _ = _batch("compact")
    a, b = model.predict(x, verbose=0), model.predict(x, verbose=0)
    assert np.array_equal(a["age"], b["age"])


def test_unknown_model_lists_choices():
    """A one-line user error (a stage run outside DVC, before check_params, ends with it)."""
    with pytest.raises(ParamsError, match="model: unknown model family 'resnet9000'; choose one of .*compact"):
        get_family("resnet9000")


def test_cosine_schedule_warms_up_then_decays_to_zero():
    from agegender.training.phases import learning_rate

    schedule = learning_rate(recipe(lr_schedule="cosine", learning_rate=0.01, epochs=10), 100)
    assert float(schedule(0)) == pytest.approx(0.001)
    assert float(schedule(100)) == pytest.approx(0.01)
    assert float(schedule(1000)) == pytest.approx(0.0, abs=1e-6)
    assert float(schedule(400)) < float(schedule(200))
    assert learning_rate(recipe(learning_rate=0.01), 100) == 0.01  # plateau: constant start


def test_compact_stage_blocks_add_residual_blocks():
    spec = get_family("compact")
    one = networks.compact_resnet((64, 64, 3), spec.age_output, {}, 0)
    deeper = networks.compact_resnet((64, 64, 3), spec.age_output, {}, 0, stage_blocks=(1, 1, 2, 2))
    adds = lambda m: sum(isinstance(layer, keras.layers.Add) for layer in m.layers)  # noqa: E731
    assert adds(one) == 4 and adds(deeper) == 6
    assert deeper.output["age"].shape == one.output["age"].shape
    with pytest.raises(ValueError):  # one block count per stage
        networks.compact_resnet((64, 64, 3), spec.age_output, {}, 0, stage_blocks=(1, 1))


def test_compact_weight_gradients_match_float64_even_with_few_channels():
    """Every weight's gradient of a narrow compact network (4 channels into a stride-2 shortcut)
    against the same network in float64. The shortcut subsamples before its 1x1 convolution:
    TensorFlow 2.21's oneDNN AVX2 kernel for a strided 1x1 convolution's weight gradient with
    under 8 input channels came out 7.7 to 123 times the gradient's own scale off, different on
    each call (CI runs this file with oneDNN capped at AVX2)."""
    import tensorflow as tf

    narrow = {"stem_filters": 4, "stage_filters": [4, 8, 8, 8], "stage_blocks": [1, 1, 1, 1]}
    x = np.random.default_rng(0).uniform(0, 255, (8, 72, 72, 3))

    def gradients(dtype, weights=None):
        before = keras.config.dtype_policy()
        keras.config.set_dtype_policy(dtype)
        try:
            model = networks.compact_resnet((72, 72, 3), AgeOutput("regression"), {}, 0, **narrow)
        finally:
            keras.config.set_dtype_policy(before)
        if weights is None:  # each block's last BN starts at zero scale: no gradient flows back
            for layer in model.layers:  # through its branch until it moves, so give it one
                if layer.name.endswith("_bn2"):
                    layer.gamma.assign(np.full(layer.gamma.shape, 0.5, "float32"))
        else:
            model.set_weights([w.astype(dtype) for w in weights])
        with tf.GradientTape() as tape:  # inference mode: no dropout, BN as the affine map it keeps
            out = model(tf.constant(x, dtype), training=False)
            loss = tf.reduce_sum(out["age"]) * 0.01 + tf.reduce_sum(out["gender"])
        return model, [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]

    model, ours = gradients("float32")
    _, exact = gradients("float64", model.get_weights())
    assert all(np.abs(b).max() > 0 for b in exact)  # every weight takes part
    off = {v.path: float(np.abs(a - b).max() / np.abs(b).max())
           for v, a, b in zip(model.trainable_weights, ours, exact, strict=True)}
    assert max(off.values()) < 1e-4, {k: v for k, v in off.items() if v >= 1e-4}
    assert "stage2_proj_subsample" in [layer.name for layer in model.layers]


@pytest.mark.bf16
def test_mixed_bfloat16_builds_bfloat16_layers_with_float32_heads_and_survives_saving(tmp_path):
    """The policy part, on any CPU: layers in bfloat16, weights and heads float32, kept by saving;
    ``auto`` loading switches to float32 exactly where this CPU lacks native BF16."""
    from agegender import hardware
    from agegender.serving.saved import ModelInfo, load_model, save_model

    model = build_model("compact", recipe(architecture={"stage_blocks": [1, 1, 1, 1]},
                                          precision="mixed_bfloat16"), seed=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the build
    assert model.get_layer("stem_conv").compute_dtype == "bfloat16"
    assert model.get_layer("stem_conv").kernel.dtype == "float32"  # weights stay float32
    assert model.get_layer("age").compute_dtype == model.get_layer("gender").compute_dtype == "float32"
    save_model(model, tmp_path / "m.keras", ModelInfo.for_family("compact", "mixed_bfloat16"))
    # in the trained precision by name: as saved, whatever this CPU
    loaded, info = load_model(tmp_path / "m.keras", precision="mixed_bfloat16")
    assert info == ModelInfo.for_family("compact", "mixed_bfloat16")
    assert loaded.get_layer("stem_conv").compute_dtype == "bfloat16"
    # auto (what evaluate and predict use): float32 where bfloat16 would only be emulated
    native = hardware.cpu_info().native_bf16() and not hardware.gpu_info()
    auto, info = load_model(tmp_path / "m.keras")
    expected = "mixed_bfloat16" if native else "float32"
    assert info.precision == expected
    assert auto.get_layer("stem_conv").compute_dtype == ("bfloat16" if native else "float32")
    float32 = build_model("compact", recipe(architecture={"stage_blocks": [1, 1, 1, 1]},
                                            precision="float32"), seed=0)
    assert float32.get_layer("stem_conv").compute_dtype == "float32"


@pytest.mark.bf16
def test_mixed_bfloat16_trains_and_predicts_the_same_after_saving(tmp_path):
    """The compute part: needs a CPU whose oneDNN runs bfloat16 natively (capped with
    ONEDNN_MAX_CPU_ISA=AVX2 it cannot even build a bfloat16 convolution)."""
    from agegender import hardware
    from agegender.serving.saved import ModelInfo, load_model, save_model

    if not hardware.cpu_info().native_bf16() or hardware.gpu_info():
        pytest.skip("needs a CPU with native BF16 (avx512_bf16 / amx_bf16, oneDNN not capped "
                    "below it) and no GPU")
    spec = get_family("compact")
    model = build_model("compact", recipe(architecture={"stage_blocks": [1, 1, 1, 1]},
                                          precision="mixed_bfloat16"), seed=0)
    x, labels = _batch("compact", n=8)
    out = model.predict(x, verbose=0)
    assert out["age"].dtype == np.float32 and out["gender"].dtype == np.float32
    np.testing.assert_allclose(out["age"].sum(axis=1), 1.0, atol=1e-5)  # a float32 softmax
    compile_model(model, spec, recipe(), steps_per_epoch=2)
    history = model.fit(make_dataset(x, keras_targets(labels, spec.age_output), batch_size=4),
                        epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    save_model(model, tmp_path / "m.keras", ModelInfo.for_family("compact", "mixed_bfloat16"))
    loaded, _ = load_model(tmp_path / "m.keras", precision="mixed_bfloat16")
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["age"], model.predict(x, verbose=0)["age"],
                               atol=1e-6)


def test_unknown_architecture_key_is_refused_naming_it():
    with pytest.raises(ParamsError, match=r"models\.compact\.architecture\.stage_block: .*stage_blocks"):
        build_model("compact", recipe(architecture={"stage_block": [1, 1, 1, 1]}), seed=0)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_batches_per_epoch_counts_the_last_partial_batch():
    from agegender.training.setup import batches_per_epoch

    assert batches_per_epoch(128, 64) == 2
    assert batches_per_epoch(129, 64) == 3
    assert batches_per_epoch(1, 64) == 1


def test_gender_accuracy_scores_blended_labels_by_the_larger_share():
    from agegender.training.phases import gender_accuracy

    pred = np.array([[0.2], [0.6], [0.7], [0.9], [0.4]], dtype=np.float32)
    hard = np.array([[0], [1], [0], [1], [1]], dtype=np.float32)
    ours, keras_own = gender_accuracy(), keras.metrics.BinaryAccuracy()
    ours.update_state(hard, pred)
    keras_own.update_state(hard, pred)
    assert float(ours.result()) == pytest.approx(float(keras_own.result())) == pytest.approx(0.6)
    blended = np.array([[0.1], [0.9], [0.3], [0.8], [0.6]], dtype=np.float32)  # mixup labels
    ours.reset_state()
    ours.update_state(blended, pred)
    assert float(ours.result()) == pytest.approx(0.6)  # same sides of 0.5 as the hard labels
