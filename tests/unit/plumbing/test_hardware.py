"""Precision is chosen by the hardware present: faked CPU flags and GPUs, no real accelerator."""
import numpy as np
import pytest

from agegender import hardware
from agegender.hardware import CPU, GPU, choose_precision, inference_precision

BF16_CPU = CPU("Intel Xeon (Sapphire Rapids)", frozenset({"avx2", "fma", "avx512f", "avx512_bf16",
                                                           "amx_bf16"}), 2)
AMX_ONLY = CPU("some AMX CPU", frozenset({"avx2", "amx_bf16"}), 2)
AVX2_CPU = CPU("AMD EPYC (Rome)", frozenset({"avx2", "fma"}), 2)
APPLE = CPU("Apple M2", frozenset(), 8)  # no flags readable: float32


@pytest.mark.parametrize("cpu, gpus, env, expected", [
    (BF16_CPU, [], {}, "mixed_bfloat16"),
    (AMX_ONLY, [], {}, "mixed_bfloat16"),
    (AVX2_CPU, [], {}, "float32"),
    (APPLE, [], {}, "float32"),
    # oneDNN capped below its BF16 ISA: it would emulate bfloat16, so float32 (the 10x cliff)
    (BF16_CPU, [], {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "float32"),
    (BF16_CPU, [], {"ONEDNN_MAX_CPU_ISA": "avx512_core"}, "float32"),
    (BF16_CPU, [], {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, "mixed_bfloat16"),
    (AVX2_CPU, [GPU("NVIDIA H100", (9, 0))], {}, "mixed_float16"),
    (AVX2_CPU, [GPU("Tesla V100", (7, 0)), GPU("NVIDIA A100", (8, 0))], {}, "mixed_float16"),
    (BF16_CPU, [GPU("Tesla P100", (6, 0))], {}, "float32"),  # no tensor cores
    (AVX2_CPU, [GPU("unknown", None)], {}, "float32"),
])
def test_auto_precision_follows_the_hardware(cpu, gpus, env, expected):
    assert choose_precision("auto", cpu, gpus, env) == expected


def test_an_explicit_precision_is_kept_and_a_wrong_one_refused():
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert choose_precision(name, AVX2_CPU, [], {}) == name
    with pytest.raises(ValueError, match="mixed_float8"):
        choose_precision("mixed_float8", AVX2_CPU, [], {})


def test_a_model_predicts_in_float32_where_its_precision_would_be_emulated():
    assert inference_precision("mixed_bfloat16", AVX2_CPU, [], {}) == "float32"
    assert inference_precision("mixed_bfloat16", BF16_CPU, [], {}) == "mixed_bfloat16"
    assert inference_precision("mixed_bfloat16", BF16_CPU, [], {"ONEDNN_MAX_CPU_ISA": "AVX2"}) == "float32"
    assert inference_precision("mixed_float16", BF16_CPU, [], {}) == "float32"
    assert inference_precision("mixed_float16", AVX2_CPU, [GPU("A100", (8, 0))], {}) == "mixed_float16"
    assert inference_precision("float32", AVX2_CPU, [], {}) == "float32"


def test_this_machine_is_described():
    cpu = hardware.cpu_info()
    assert cpu.model and cpu.cores >= 1
    assert hardware.device_name(cpu, []).startswith("CPU ")
    assert hardware.device_name(cpu, [GPU("NVIDIA L4", (8, 9))] * 2) == "2 x GPU NVIDIA L4"
    assert set(hardware.isa_flags(cpu)) <= set(hardware.SPEED_FLAGS)


@pytest.mark.bf16
def test_a_bfloat16_model_loads_as_float32_when_asked(tmp_path, monkeypatch):
    """What load_model does on a CPU without BF16: same weights, float32 compute, same answers
    to within bfloat16's rounding."""
    from agegender.model.build import build_model
    from agegender.params import Recipe
    from agegender.serving.saved import ModelInfo, load_model, save_model

    model = build_model("compact", Recipe(architecture={"stage_blocks": [1, 1, 1, 1]}), 0,
                        precision="mixed_bfloat16")
    save_model(model, tmp_path / "m.keras", ModelInfo.for_family("compact", "mixed_bfloat16"))
    x = np.random.default_rng(0).integers(0, 256, (8, 72, 72, 3), dtype=np.uint8)
    real_native = hardware.cpu_info().native_bf16()  # before faking: can this CPU compute bfloat16?
    monkeypatch.setattr(hardware, "cpu_info", lambda: AVX2_CPU)
    monkeypatch.setattr(hardware, "gpu_info", lambda: [])
    as_float, info = load_model(tmp_path / "m.keras")  # auto: this "CPU" has no BF16
    assert info.precision == "float32" and as_float.get_layer("stem_conv").compute_dtype == "float32"
    monkeypatch.setattr(hardware, "cpu_info", lambda: BF16_CPU)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # the faked CPU's BF16, uncapped
    native, info = load_model(tmp_path / "m.keras")
    assert info.precision == "mixed_bfloat16" and native.get_layer("stem_conv").compute_dtype == "bfloat16"
    a = as_float.predict(x, verbose=0)
    assert np.isfinite(a["age"]).all()
    if not real_native:  # oneDNN capped below BF16 (ONEDNN_MAX_CPU_ISA=AVX2) cannot run bfloat16
        pytest.skip("the bfloat16 comparison needs a CPU with native BF16")
    b = native.predict(x, verbose=0)
    np.testing.assert_allclose(a["age"], b["age"], atol=1e-3)
    np.testing.assert_allclose(a["gender"], b["gender"], atol=2e-2)


def test_multi_worker_without_tf_config_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(hardware.StrategyError, match="TF_CONFIG"):
        hardware.make_strategy("multi_worker")


def test_a_network_that_drifts_in_bfloat16_stays_float32_on_a_bf16_cpu_under_auto(monkeypatch):
    """The face family (cpu_bf16=False: its base drifts in bfloat16 at 224 px) is built, and so
    trained, featurised and saved, in float32 where auto gives the compact network mixed bfloat16;
    a GPU's float16 and an explicit setting are unaffected."""
    from agegender.model.build import build_model
    from agegender.model.families import get_family
    from agegender.params import Recipe

    assert choose_precision("auto", BF16_CPU, [], {}, cpu_bf16=False) == "float32"
    assert choose_precision("auto", AVX2_CPU, [GPU("NVIDIA H100", (9, 0))], {}, cpu_bf16=False) == "mixed_float16"
    assert choose_precision("mixed_bfloat16", BF16_CPU, [], {}, cpu_bf16=False) == "mixed_bfloat16"
    monkeypatch.setattr(hardware, "cpu_info", lambda: BF16_CPU)
    monkeypatch.setattr(hardware, "gpu_info", lambda: [])
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert not get_family("face_mobilenet").cpu_bf16 and get_family("compact").cpu_bf16
    face = build_model("face_mobilenet", Recipe(precision="auto", architecture={"weights": None}), 0)
    compact = build_model("compact", Recipe(precision="auto"), 0)
    assert face.get_layer("hse_mobilenet").get_layer("conv_pw_13").compute_dtype == "float32"
    assert compact.get_layer("stage1_conv1").compute_dtype == "bfloat16"
