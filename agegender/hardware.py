"""What the pipeline runs on, and the precision and ``tf.distribute`` strategy that suit it.

Precision is chosen by the hardware present, not by the machine a default was tuned on:
``mixed_float16`` on NVIDIA GPUs of compute capability 7.0 or newer (tensor cores),
``mixed_bfloat16`` on a CPU with native BF16 instructions (x86 ``avx512_bf16`` or ``amx_bf16``),
``float32`` everywhere else. Where BF16 is only emulated (AVX2-only CPUs), mixed_bfloat16 trains
about ten times slower than float32, so it must never be a default there.
"""
from __future__ import annotations

import logging
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from agegender.errors import UserError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo flags of native BF16 on x86
# ISA flags worth printing beside a timing (what decides float32 and bfloat16 speed on a CPU)
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile",
               "asimd", "sve", "bf16")
# oneDNN's ISA levels (ONEDNN_MAX_CPU_ISA) that still run BF16 natively; a lower cap (e.g. AVX2)
# makes oneDNN emulate it, as on a CPU without the instructions
ONEDNN_BF16_ISAS = frozenset({"AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                              "AVX512_CORE_AMX_FP16", "AVX10_1_512", "AVX10_1_512_AMX",
                              "AVX10_1_512_AMX_FP16", "ALL", "DEFAULT"})


class StrategyError(UserError):
    """A distribution strategy that cannot run here (e.g. multi_worker without TF_CONFIG)."""


@dataclass(frozen=True)
class CPU:
    model: str
    flags: frozenset[str] = field(default_factory=frozenset)
    cores: int = 1

    def native_bf16(self, env=None) -> bool:
        """True when BF16 matrix maths runs natively: the CPU has the instructions and oneDNN
        is not capped below them by ``ONEDNN_MAX_CPU_ISA``."""
        env = os.environ if env is None else env
        cap = env.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
        return bool(self.flags & BF16_FLAGS) and (not cap or cap in ONEDNN_BF16_ISAS)


@dataclass(frozen=True)
class GPU:
    name: str
    compute_capability: tuple[int, int] | None


def cpu_info() -> CPU:
    """The CPU model name and feature flags (Linux /proc/cpuinfo; macOS sysctl; else platform)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "cpu model") and value.strip():
                model = value.strip()
            elif key in ("flags", "features"):
                flags.update(value.split())
    elif platform.system() == "Darwin":
        try:
            model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                   text=True, timeout=5).stdout.strip() or model
        except (OSError, subprocess.SubprocessError):
            pass
    return CPU(model, frozenset(flags), os.cpu_count() or 1)


def gpu_info() -> list[GPU]:
    """The GPUs TensorFlow can use, with their names and compute capabilities."""
    import tensorflow as tf

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        cc = details.get("compute_capability")
        gpus.append(GPU(details.get("device_name", device.name), tuple(cc) if cc else None))
    return gpus


def choose_precision(requested: str, cpu: CPU, gpus: list[GPU], env=None, cpu_bf16: bool = True) -> str:
    """The precision to train in: ``requested`` unless it is ``auto``, which picks
    ``mixed_float16`` when every GPU has compute capability >= 7.0, ``mixed_bfloat16`` on a CPU
    with native BF16 and no GPU (unless ``cpu_bf16`` is False: a network that drifts in bfloat16),
    and ``float32`` otherwise (older GPUs, AVX2-only CPUs, CPUs whose flags we cannot read such as
    Apple silicon)."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {list(PRECISIONS)}")
    if requested != "auto":
        return requested
    if gpus:
        ok = all(g.compute_capability and g.compute_capability >= (7, 0) for g in gpus)
        return "mixed_float16" if ok else "float32"
    return "mixed_bfloat16" if cpu_bf16 and cpu.native_bf16(env) else "float32"


def inference_precision(trained: str, cpu: CPU, gpus: list[GPU], env=None) -> str:
    """The precision to predict in with a model trained in ``trained``: the same, unless this
    machine would only emulate it (bfloat16 without native BF16, float16 without a GPU): float32."""
    if trained == "mixed_bfloat16" and not gpus and not cpu.native_bf16(env):
        return "float32"
    if trained == "mixed_float16" and not gpus:
        return "float32"
    return trained


def device_name(cpu: CPU, gpus: list[GPU]) -> str:
    """One line naming what computes: the GPUs, or the CPU model and its core count."""
    if gpus:
        names = sorted({g.name for g in gpus})
        return f"{len(gpus)} x GPU {', '.join(names)}"
    return f"CPU {cpu.model} ({cpu.cores} cores)"


def isa_flags(cpu: CPU) -> list[str]:
    return [f for f in SPEED_FLAGS if f in cpu.flags]


def make_strategy(name: str):
    """The ``tf.distribute`` strategy for ``train.strategy``:

    - ``auto``: MirroredStrategy over every local GPU when there are several, else the default
      (one device) strategy;
    - ``one_device``: the default strategy;
    - ``mirrored``: MirroredStrategy over every local GPU, or over every logical CPU device when
      there is no GPU;
    - ``multi_worker``: MultiWorkerMirroredStrategy, its cluster read from ``TF_CONFIG``.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {list(STRATEGIES)}")
    if name == "multi_worker":  # before anything else starts TensorFlow's runtime
        if not os.environ.get("TF_CONFIG"):
            raise StrategyError("train.strategy multi_worker needs the cluster in the TF_CONFIG "
                                "environment variable on every worker (docs/scaling.md)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def strategy_name(strategy) -> str:
    """E.g. 'MirroredStrategy (2 replicas)', 'one device (1 replica)'."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        name = "MultiWorkerMirroredStrategy"
    elif isinstance(strategy, tf.distribute.MirroredStrategy):
        name = "MirroredStrategy"
    elif not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        name = "one device"
    else:
        name = type(strategy).__name__
    n = strategy.num_replicas_in_sync
    return f"{name} ({n} replica{'s' if n != 1 else ''})"


def is_chief(strategy) -> bool:
    """True on the worker that writes outputs (always, outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in resolver.cluster_spec().as_dict())
