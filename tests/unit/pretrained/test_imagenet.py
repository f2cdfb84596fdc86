"""ImageNet weights of the transfer bases (agegender/pretrained/imagenet.py, bases.py): Keras'
cache, a local file, and the one-line message when neither can be had. No network access:
ImageNet downloads are faked to fail."""
import numpy as np
import pytest

from agegender.data.images import get_profile
from agegender.model.families import get_family
from agegender.pretrained import imagenet
from agegender.pretrained.bases import transfer_base
from project_params import write_params
from synthetic import processed_arrays


def _fail_download(*args, **kwargs):
    raise Exception("URL fetch failure on https://example.invalid: None -- [Errno -2] "
                    "Name or service not known")


@pytest.mark.parametrize("base", ["vgg16", "vgg19"])
def test_missing_imagenet_weights_name_the_file_and_the_fixes(base, monkeypatch):
    from keras.src.utils import file_utils

    monkeypatch.setattr(file_utils, "get_file", _fail_download)  # what Keras does offline
    with pytest.raises(imagenet.VGGWeightsError) as err:
        transfer_base(base, "imagenet", (70, 70, 3))
    message = str(err.value)
    expected = imagenet.keras_cache_file(f"{base}_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert str(expected) in message and "models" in expected.parts
    assert f"models.{base}.architecture.weights" in message and "null" in message
    assert "Name or service not known" in message


def test_weights_path_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(imagenet.VGGWeightsError, match="nope.h5"):
        transfer_base("vgg16", str(tmp_path / "nope.h5"), (64, 64, 3))


def test_weights_from_a_local_file(tmp_path):
    source = transfer_base("vgg16", None, (32, 32, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    source.save_weights(path)
    loaded = transfer_base("vgg16", str(path), (32, 32, 3))
    assert all(np.array_equal(a, b) for a, b in zip(source.get_weights(), loaded.get_weights()))


def test_the_train_stage_ends_with_one_line_when_imagenet_weights_are_missing(tmp_path, monkeypatch,
                                                                               capsys):
    """`dvc exp run -S model=vgg19` offline: the stage's one-line message, exit 1, no traceback."""
    from keras.src.utils import file_utils

    from agegender import commands
    from stages import train as train_stage

    monkeypatch.setattr(file_utils, "get_file", _fail_download)  # what Keras does offline
    data = processed_arrays(tmp_path / "data", get_profile(get_family("vgg19").profile).shape, (4, 2), 0)
    write_params(tmp_path / "params.yaml", {"model": "vgg19", "models.vgg19.architecture.weights": "imagenet"})
    code = commands.run("train", train_stage.main, [
        "--params", str(tmp_path / "params.yaml"), "--data-dir", str(data), "--model-out",
        str(tmp_path / "m.keras"), "--live-dir", str(tmp_path / "live"), "--summary-out",
        str(tmp_path / "s.json")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("train: error: ImageNet weights for vgg19 could not be loaded")
    assert "Traceback" not in err and len(err.splitlines()) == 1
