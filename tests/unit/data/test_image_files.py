"""Images read from disk a batch at a time (ImageFiles): the same rows, batches and files as the
whole arrays in memory."""
import io

import numpy as np
import pytest

from agegender.data.arrays import ImageFiles, concat_images, image_chunks, load_split
from agegender.data.ingest import ingest
from agegender.data.preprocessing import write_arrays
from agegender.model.families import get_family
from agegender.data.datasets import make_dataset
from agegender.model.targets import keras_targets


def _files(tmp_path, sizes=(23, 9)):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (n, 5, 5, 3), dtype=np.uint8) for n in sizes]
    paths = []
    for k, a in enumerate(arrays):
        paths.append(tmp_path / f"part{k}.npy")
        np.save(paths[-1], a)
    return arrays, paths


def test_take_views_and_concat_give_the_rows_of_the_arrays(tmp_path):
    (a, b), (pa, pb) = _files(tmp_path)
    files = ImageFiles([pa])
    assert len(files) == 23 and files.shape == a.shape and files.dtype == np.uint8
    rows = np.array([5, 3, 4, 3, 22, 0, -1])  # unsorted, repeated, consecutive, negative
    np.testing.assert_array_equal(files.take(rows), a[rows])
    view = files[np.array([7, 2, 9, 10])][1:]  # a view of a view
    np.testing.assert_array_equal(files[a[:, 0, 0, 0] > 128].take([0, 1]), a[a[:, 0, 0, 0] > 128][:2])
    np.testing.assert_array_equal(view.take([2, 0, 1]), a[[10, 2, 9]])
    both = ImageFiles.concat([files[::2], ImageFiles([pb])])
    expected = np.concatenate([a[::2], b])
    assert both.shape == expected.shape
    idx = np.random.default_rng(1).permutation(len(expected))
    np.testing.assert_array_equal(both.take(idx), expected[idx])
    np.testing.assert_array_equal(concat_images([files, ImageFiles([pb])]).take(np.arange(32)),
                                  np.concatenate([a, b]))
    np.testing.assert_array_equal(np.concatenate(list(image_chunks(both, rows=4))), expected)
    with pytest.raises(IndexError):
        files.take([23])
    with pytest.raises(TypeError):
        files[0]


def test_a_truncated_file_is_refused(tmp_path):
    (_, _), (pa, _) = _files(tmp_path)
    pa.write_bytes(pa.read_bytes()[:-10])
    with pytest.raises(Exception, match="truncated"):
        ImageFiles([pa])


def test_preprocess_writes_what_np_save_of_the_whole_array_writes(utk_dir, tmp_path):
    folder, _ = utk_dir
    ingest(folder, tmp_path / "l.csv", tmp_path / "q.json", 0.2, 0.2, seed=0)
    write_arrays(folder, tmp_path / "l.csv", tmp_path / "out", "rgb64")
    for split in ("train", "val", "test"):
        written = (tmp_path / "out" / f"{split}_images.npy").read_bytes()
        buf = io.BytesIO()
        np.save(buf, np.load(tmp_path / "out" / f"{split}_images.npy"))
        assert written == buf.getvalue()
        images, _ = load_split(tmp_path / "out", split)
        assert isinstance(images, ImageFiles)
        assert images.take(np.arange(len(images))).any(), "rows must hold the decoded images"


def _batches(ds, n_epochs):
    out = []
    for _ in range(n_epochs):
        for batch in ds:
            out.append([np.asarray(t) if not isinstance(t, dict) else {k: np.asarray(v) for k, v in t.items()}
                        for t in (batch if isinstance(batch, tuple) else (batch,))])
    return out


@pytest.mark.parametrize("mixup", [0.0, 0.3])
@pytest.mark.parametrize("epochs", [None, range(1, 3)])
def test_batches_from_disk_equal_in_memory_batches_bit_for_bit(tmp_path, mixup, epochs):
    (a, b), (pa, pb) = _files(tmp_path)
    memory, disk = np.concatenate([a, b]), ImageFiles.concat([ImageFiles([pa]), ImageFiles([pb])])
    rng = np.random.default_rng(2)
    labels = np.stack([rng.integers(1, 90, len(memory)), rng.integers(0, 2, len(memory)),
                       rng.integers(0, 5, len(memory))], 1).astype(np.int16)
    y = keras_targets(labels, get_family("compact").age_output)
    w = {"age": rng.random(len(memory)).astype(np.float32), "gender": np.ones(len(memory), np.float32)}
    n_epochs = 1 if epochs else 2  # a range holds its epochs one after another
    got = [_batches(make_dataset(x, y, batch_size=8, shuffle=True, seed=3, sample_weight=w,
                                 mixup_alpha=mixup, epochs=epochs), n_epochs) for x in (memory, disk)]
    assert len(got[0]) == len(got[1]) == 2 * 4
    for mem, dsk in zip(*got):
        for t_mem, t_dsk in zip(mem, dsk):
            if isinstance(t_mem, dict):
                for k in t_mem:
                    np.testing.assert_array_equal(t_mem[k], t_dsk[k])
            else:
                assert t_mem.dtype == t_dsk.dtype
                np.testing.assert_array_equal(t_mem, t_dsk)
    # and images alone, unshuffled, as inference reads them
    plain = [np.concatenate([bt[0] for bt in _batches(make_dataset(x, None, batch_size=8), 1)])
             for x in (memory, disk)]
    np.testing.assert_array_equal(plain[0], memory)
    np.testing.assert_array_equal(plain[1], memory)


def test_targets_encoded_in_chunks_equal_one_encoding():
    ages = np.random.default_rng(4).integers(0, 117, 1000)
    labels = np.stack([ages, ages % 2, ages % 5], 1).astype(np.int16)
    for family in ("compact", "sigmoid_bins", "multitask"):
        out = get_family(family).age_output
        np.testing.assert_array_equal(keras_targets(labels, out, chunk=7)["age"], out.encode(ages))
