"""How close a training run is to the hardware: FLOPs a network costs and what the CPU can do.

* :func:`graph_flops` / :func:`forward_flops` / :func:`train_step_flops`: FLOPs COUNTED by
  TensorFlow's profiler, from the library (:mod:`agegender.training.flops`, which the train stage
  uses for ``cost.train_tflop``), re-exported here for the benchmarks.
* :func:`layer_macs`: the same network's Conv2D / Dense multiply-adds counted by hand from the
  layers' shapes, the check on the profiler's forward count.
* :func:`matmul_peak`: the practical peak, GFLOP/s of a large square matmul on the same cores
  with TensorFlow's current thread settings; :func:`theoretical_peak`: cores x clock x FLOP per
  cycle, only where the clock is shown (VMs often show none).
"""
from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from agegender.training.flops import FlopCount, forward_flops, graph_flops, train_step_flops  # noqa: F401


def layer_macs(model) -> dict[str, int]:
    """Multiply-adds per image of every Conv2D and Dense layer of ``model`` (nested models
    included), from the layers' kernel and output shapes: ``output pixels x kernel area x input
    channels x filters`` for a convolution, ``inputs x units`` for a dense layer."""
    import keras

    macs = {}
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Conv2D) and type(layer) is keras.layers.Conv2D:
            _, h, w, filters = layer.output.shape
            kh, kw, cin, _ = layer.kernel.shape
            macs[layer.name] = int(h * w * kh * kw * cin * filters)
        elif isinstance(layer, keras.layers.Dense):
            macs[layer.name] = int(math.prod(layer.kernel.shape))
    return macs


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def matmul_peak(dtype: str = "float32", n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of ``repeats`` (n, n) x (n, n) matmuls in ``dtype`` (2 n^3 FLOPs each), run as one
    graph after a warm-up, on the cores and threads TensorFlow is set to use: the practical peak
    a network's convolutions and dense layers can approach."""
    import tensorflow as tf

    a = tf.random.stateless_normal((n, n), (1, 2), dtype=tf.float32)
    a = tf.cast(a, dtype)
    b = tf.cast(tf.random.stateless_normal((n, n), (3, 4), dtype=tf.float32), dtype)

    @tf.function
    def chain(a, b):
        c = a
        for _ in range(repeats):  # each product depends on the last: no op can be skipped
            c = tf.matmul(c, b) * tf.cast(1.0 / n, dtype)
        return tf.reduce_sum(tf.cast(c, tf.float32))

    chain(a, b).numpy()  # warm-up: tracing, oneDNN primitive creation
    start = time.perf_counter()
    chain(a, b).numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


@dataclass(frozen=True)
class TheoreticalPeak:
    gflops: float | None  # None: no clock shown
    how: str  # the formula with its clock source, or why there is none


def theoretical_peak(cores: int, flags: frozenset[str], env=None,
                     cpuinfo: Path = Path("/proc/cpuinfo")) -> TheoreticalPeak:
    """float32 FMA peak: cores x clock x FLOP per cycle, assuming two FMA units per core
    (AVX-512: 2 x 16 lanes x 2 = 64 FLOP/cycle; AVX2 + FMA: 32). ``ONEDNN_MAX_CPU_ISA`` = AVX2
    caps it at AVX2. The clock is /proc/cpuinfo's "cpu MHz" (a VM shows the host's nominal clock
    or none; turbo is not shown); without one, no figure. Zen 4 runs AVX-512 as two 256-bit halves
    (its per-cycle peak is Zen 3's), so on AMD the AVX2 figure applies."""
    env = os.environ if env is None else env
    cap = env.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    text = cpuinfo.read_text(errors="replace") if cpuinfo.is_file() else ""
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)]
    amd = "AuthenticAMD" in text
    if "avx512f" in flags and not amd and not cap.startswith(("AVX2", "AVX ", "SSE")) and cap != "AVX":
        per_cycle, isa = 64, "AVX-512"
    elif {"avx2", "fma"} <= flags:
        per_cycle, isa = 32, "AVX2+FMA" + (" (AMD: AVX-512 runs as 2 x 256 bit)" if amd and "avx512f" in flags else "")
    else:
        return TheoreticalPeak(None, "no AVX2/FMA: not estimated")
    if not mhz or not mhz[0]:
        return TheoreticalPeak(None, f"{isa} {per_cycle} FLOP/cycle/core; clock not shown by this machine")
    gflops = cores * mhz[0] / 1e3 * per_cycle
    return TheoreticalPeak(gflops, f"{cores} cores x {mhz[0]:.0f} MHz (/proc/cpuinfo cpu MHz, as the "
                                   f"VM reports it; turbo not shown) x {per_cycle} FLOP/cycle "
                                   f"({isa}, 2 FMA units assumed)")
