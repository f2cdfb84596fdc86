"""Where a training step's time goes: op times from a TensorFlow profiler trace, by kind of work.

:func:`profile_fit` records ``model.fit`` on a dataset with ``tf.profiler.experimental`` and
:func:`op_time_by_group` reads the trace (the ``.xplane.pb`` it writes): every TensorFlow op run on
the executor's ``tf_Compute`` threads, grouped by the layer whose name scope it ran in (forward
and gradient alike) and the layer's kind, the optimizer's update, and the input pipeline's
``tf_data`` threads. Op times are wall times of each op; with two ops in flight at once their sum
exceeds the step's wall time, so shares are of the summed op time.
"""
from __future__ import annotations

import collections
import re
import tempfile
import time
from pathlib import Path

# layer class -> group; a layer class not named here counts as "other"
GROUPS = {"Conv2D": "convolutions", "BatchNormalization": "batch norm",
          "FusedBatchNormalization": "batch norm", "Dense": "dense",
          "RandomFraming": "re-framing", "RandomFlip": "flip / translation",
          "RandomTranslation": "flip / translation", "RandomRotation": "rotation / zoom",
          "RandomZoom": "rotation / zoom", "RandomContrast": "contrast"}
ORDER = ["convolutions", "batch norm", "dense", "re-framing", "flip / translation",
         "rotation / zoom", "contrast", "optimizer", "other ops (ReLU, adds, pooling, losses, metrics)",
         "input pipeline (tf.data threads)"]


def _layer_kinds(model) -> dict[str, str]:
    kinds = {}
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        kinds[layer.name] = type(layer).__name__
        stack.extend(getattr(layer, "layers", []))
    return kinds


def op_time_by_group(xplane: Path, model) -> dict[str, float]:
    """Seconds of op time per group (:data:`ORDER`) in one profiler trace of ``model`` training."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(xplane).read_bytes())
    kinds, optimizer = _layer_kinds(model), model.optimizer.name
    seconds = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name.startswith("tf_data"):  # the input pipeline's map workers (gathers)
                seconds[ORDER[-1]] += sum(e.duration_ps for e in line.events
                                          if names[e.metadata_id] == "ParallelMapProduce") / 1e12
                continue
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names[event.metadata_id]
                if ":" not in name or "::" in name:  # executor bookkeeping, not an op
                    continue
                seconds[_group(name.rsplit(":", 1)[0], kinds, optimizer)] += event.duration_ps / 1e12
    return {g: seconds.get(g, 0.0) for g in ORDER}


def _group(scope: str, kinds: dict[str, str], optimizer: str) -> str:
    parts = scope.split("/")
    if any(p == optimizer or p.startswith(optimizer + "_") for p in parts[:2]):
        return "optimizer"
    for part in reversed(parts):  # the innermost layer decides: augment/random_framing -> re-framing
        kind = kinds.get(part) or kinds.get(re.sub(r"_\d+$", "", part))
        if kind in GROUPS:
            return GROUPS[kind]
    return ORDER[-2]


def profile_fit(model, data, logdir: str | None = None) -> tuple[float, dict[str, float]]:
    """Wall seconds of one ``model.fit(data, epochs=1)`` under the profiler, and its op time by
    group (:func:`op_time_by_group`). Fit the model once before, so tracing is not profiled."""
    import tensorflow as tf

    logdir = logdir or tempfile.mkdtemp(prefix="op_profile_")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    try:
        model.fit(data, epochs=1, verbose=0)
    finally:
        wall = time.perf_counter() - start
        tf.profiler.experimental.stop()
    xplane = max(Path(logdir).rglob("*.xplane.pb"), key=lambda p: p.stat().st_mtime)
    return wall, op_time_by_group(xplane, model)
