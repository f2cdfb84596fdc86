import numpy as np
import pandas as pd
import pytest
from PIL import Image

from agegender.data.arrays import load_split
from agegender.data.preprocessing import write_arrays
from agegender.data.ingest import ingest
from agegender.data.images import ImageDecodeError, PROFILES, decode, get_profile, load_array


@pytest.mark.parametrize("name", ["gray70", "rgb128", "rgb224"])
def test_profiles_shape_and_dtype(name, utk_dir, tmp_path):
    folder, _ = utk_dir
    ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.2, 0.2, seed=0)
    meta = write_arrays(folder, tmp_path / "l.csv", tmp_path / "out", name)
    labels = pd.read_csv(tmp_path / "l.csv")
    for split in ("train", "val", "test"):
        x, y = load_split(tmp_path / "out", split)
        rows = labels[labels["split"] == split]
        assert x.dtype == np.uint8 and x.shape == (len(rows), *PROFILES[name].shape)
        assert y.dtype == np.int16 and (y[:, 0] == rows["age"].to_numpy()).all()
    assert meta["profile"] == name


def test_arrays_follow_labels_order(utk_dir, tmp_path):
    folder, _ = utk_dir
    ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.2, 0.2, seed=0)
    write_arrays(folder, tmp_path / "l.csv", tmp_path / "out", "rgb64")
    labels = pd.read_csv(tmp_path / "l.csv")
    first = labels[labels["split"] == "test"].iloc[0]
    x, _ = load_split(tmp_path / "out", "test")
    expected = load_array((folder / first["file"]).read_bytes(), get_profile("rgb64"))
    assert np.array_equal(x.take([0])[0], expected)


def test_area_resize_averages_pixels():
    img = Image.fromarray(np.array([[0, 255], [255, 0]] * 2, dtype=np.uint8).reshape(4, 2).repeat(2, 1)[:4, :4])
    arr = load_array(_png(img), get_profile("gray70"))
    assert arr.shape == (70, 70, 1)
    checker = np.indices((140, 140)).sum(axis=0) % 2 * 255
    small = load_array(_png(Image.fromarray(checker.astype(np.uint8))), get_profile("gray70"))
    assert np.abs(small.astype(int) - 127).max() <= 1  # a 2x2 checkerboard averages to grey


def test_grayscale_rgba_and_palette_inputs_convert():
    for mode in ("L", "RGBA", "P"):
        img = Image.new(mode, (50, 40))
        assert load_array(_png(img), get_profile("rgb128")).shape == (128, 128, 3)
        assert load_array(_png(img), get_profile("gray70")).shape == (70, 70, 1)


@pytest.mark.parametrize("data, problem", [(b"", "empty"), (b"not an image", "cannot decode")])
def test_bad_bytes_name_the_file(data, problem):
    with pytest.raises(ImageDecodeError, match=f"x.jpg: .*{problem}|x.jpg: {problem}"):
        decode(data, "x.jpg")


def test_unknown_profile_is_named():
    with pytest.raises(ValueError, match="rgb99"):
        get_profile("rgb99")


def _png(img):
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
