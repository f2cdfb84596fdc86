"""benchmarks/common/hardware_limits.py: FLOPs counted by TensorFlow's profiler against a hand count,
and the CPU's peaks (no timing is asserted)."""
import math

import pytest

from benchmarks.common import hardware_limits as hl
from benchmarks.common import op_profile as op


def _tiny(bias: bool):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=bias, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(5, use_bias=bias, name="dense")(x))


CONV_MACS = 8 * 8 * (3 * 3 * 3) * 4  # output pixels x kernel area x input channels x filters
DENSE_MACS = 8 * 8 * 4 * 5


def test_forward_flops_are_twice_the_multiply_adds_of_a_known_model():
    model = _tiny(bias=False)
    assert hl.layer_macs(model) == {"conv": CONV_MACS, "dense": DENSE_MACS}
    count = hl.forward_flops(model, batch=1)
    assert count.by_op == {"Conv2D": 2 * CONV_MACS, "MatMul": 2 * DENSE_MACS}
    assert count.total == 2 * (CONV_MACS + DENSE_MACS)
    # per image: a batch of 3 costs three times as much
    assert hl.forward_flops(model, batch=3).total == 3 * count.total
    # biases add one FLOP per output element (BiasAdd), nothing else changes
    with_bias = hl.forward_flops(_tiny(bias=True), batch=1)
    assert with_bias.total == 2 * (CONV_MACS + DENSE_MACS) + 8 * 8 * 4 + 5


def test_train_step_flops_count_the_backward_convolutions_and_the_update():
    import keras

    model = _tiny(bias=False)
    model.compile(optimizer="sgd", loss="mse")
    step = hl.train_step_flops(model, batch=2)
    assert step.by_op["Conv2D"] == 2 * 2 * CONV_MACS  # forward of 2 images
    assert step.by_op["Conv2DBackpropFilter"] == 2 * 2 * CONV_MACS  # the kernel's gradient
    assert step.total > 2 * hl.forward_flops(model, batch=2).total
    assert isinstance(model.optimizer, keras.optimizers.SGD)


def test_matmul_peak_is_a_positive_rate():
    rate = hl.matmul_peak("float32", n=64, repeats=2)
    assert math.isfinite(rate) and rate > 0


@pytest.mark.parametrize("cap, per_cycle", [("", 64), ("AVX2", 32)])
def test_theoretical_peak_needs_a_clock_and_follows_the_isa_cap(tmp_path, cap, per_cycle):
    info = tmp_path / "cpuinfo"
    info.write_text("vendor_id\t: GenuineIntel\ncpu MHz\t\t: 2000.000\n")
    flags = frozenset({"avx2", "fma", "avx512f"})
    peak = hl.theoretical_peak(2, flags, env={"ONEDNN_MAX_CPU_ISA": cap}, cpuinfo=info)
    assert peak.gflops == pytest.approx(2 * 2.0 * per_cycle) and "cpu MHz" in peak.how
    info.write_text("vendor_id\t: GenuineIntel\n")
    none = hl.theoretical_peak(2, flags, env={}, cpuinfo=info)
    assert none.gflops is None and "not shown" in none.how
    info.write_text("vendor_id\t: AuthenticAMD\ncpu MHz\t\t: 2000.000\n")  # Zen 4: 2 x 256 bit
    assert hl.theoretical_peak(2, flags, env={}, cpuinfo=info).gflops == pytest.approx(2 * 2.0 * 32)


def test_profiler_ops_are_grouped_by_the_layer_they_ran_in():
    kinds = {"stage1_conv1": "Conv2D", "stage1_bn1": "BatchNormalization", "random_framing": "RandomFraming",
             "augment": "Sequential", "stage1_relu1": "ReLU"}
    call = "StatefulPartitionedCall"
    assert op._group(f"{call}/gradient_tape/net_1/stage1_conv1_1/convolution/Conv2DBackpropInput",
                     kinds, "adam") == "convolutions"
    assert op._group(f"{call}/net_1/stage1_bn1_1/moments/mean", kinds, "adam") == "batch norm"
    assert op._group(f"{call}/net_1/augment_1/random_framing_1/ImageProjectiveTransformV3",
                     kinds, "adam") == "re-framing"
    assert op._group(f"{call}/adam/Mul_3", kinds, "adam") == "optimizer"
    assert op._group(f"{call}/net_1/stage1_relu1_1/Relu", kinds, "adam").startswith("other ops")
