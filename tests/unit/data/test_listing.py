"""The one image-listing rule (agegender.data.listing): a UTKFace folder, labelled sets and the
predictor's folder walk list the same images; symlinked folders are followed with loops detected;
a labelled set cannot pull in files from outside itself through a link."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from agegender.data import ingest, labelled
from agegender.data.listing import IMAGE_SUFFIXES, list_images
from agegender.data.source import iter_images
from agegender.prediction.inputs import expand
from synthetic import face, make_labelled


@pytest.fixture
def tree(tmp_path):
    """Images of every suffix and case, non-images, hidden files and folders, a symlinked folder
    outside the tree and a link back up (a loop). Returns (root, the relative paths of its images)."""
    root, other = tmp_path / "root", tmp_path / "other"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    other.mkdir()
    img = face(30, 1, np.random.default_rng(0), size=48)
    images = ["a.jpg", "b.JPEG", "c.png", "d.webp", "e.bmp", "sub/f.tif", "sub/g.gif",
              "sub/deeper/h.jfif", "sub/deeper/i.jpe", "j.TIFF", "linked/k.jpg"]
    for i, rel in enumerate(images):
        target = other / "k.jpg" if rel.startswith("linked/") else root / rel
        img.rotate(i).convert("RGB").save(target, format={".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
                                                          ".tif": "TIFF", ".tiff": "TIFF",
                                                          ".gif": "GIF"}.get(target.suffix.lower(), "JPEG"))
    for rel in ("notes.txt", "sub/readme.md", ".hidden.jpg", ".git/x.jpg", "sub/.y.png"):
        (root / rel).write_bytes(b"not listed")
    (root / "linked").symlink_to(other, target_is_directory=True)
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    return root, sorted(images)


def test_the_three_walkers_list_the_same_images(tree):
    root, images = tree
    predictor = sorted(os.path.relpath(it.name, root) for it in expand([root]) if it.error is None)
    scanned, skipped = labelled.scan(root)  # no labels.csv: every image is reported unlabelled
    assert not scanned
    sets = sorted(s.file for s in skipped if s.reason == "unlabelled")
    utkface = sorted(name for name, _ in iter_images(root))  # base names (UTKFace's keys)
    assert predictor == sets == images
    assert utkface == sorted(os.path.basename(p) for p in images)
    assert set(IMAGE_SUFFIXES) >= {os.path.splitext(p)[1].lower() for p in images}


def test_a_symlink_loop_is_reported_once_not_walked_forever(tree):
    root, images = tree
    listing = list_images(root)
    assert listing.loops == [root / "sub" / "loop"]
    items = expand([root])
    loop = [it for it in items if it.error]
    assert [it.name for it in loop] == [str(root / "sub" / "loop")]
    assert "loop" in loop[0].error
    assert len(items) == len(images) + 1  # every image once, the loop once


def test_special_files_are_listed_apart_from_images(tmp_path):
    (tmp_path / "ok.jpg").write_bytes(b"x")
    os.mkfifo(tmp_path / "pipe.jpg")
    listing = list_images(tmp_path)
    assert listing.files == [tmp_path / "ok.jpg"] and listing.special == [tmp_path / "pipe.jpg"]
    # ingest's walkers read regular files only: a FIFO cannot hang them
    assert [name for name, _ in iter_images(tmp_path)] == ["ok.jpg"]


@pytest.fixture
def leaky_set(tmp_path):
    """A labelled set with links out of it: a listed file, an unlisted one and a whole folder;
    and one link that stays inside the set (allowed)."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    rng = np.random.default_rng(5)
    face(40, 0, rng).save(outside / "secret.jpg")
    face(50, 1, rng).save(outside / "other.jpg")
    root = tmp_path / "extra"
    make_labelled(root / "appa", n=6, seed=2)
    img = root / "appa" / "img"
    (img / "listed_out.jpg").symlink_to(outside / "secret.jpg")
    (img / "unlisted_out.jpg").symlink_to(outside / "other.jpg")
    (img / "folder_out").symlink_to(outside, target_is_directory=True)
    (img / "inside.jpg").symlink_to(img / "0000.jpg")
    with open(root / "appa" / "labels.csv", "a") as f:
        f.write("img/listed_out.jpg,40,male,0\nimg/folder_out/secret.jpg,40,male,0\n"
                "img/inside.jpg,33,female,1\n")
    return root


def test_ingest_refuses_links_that_leave_their_set(leaky_set, utk_dir, tmp_path):
    folder, _ = utk_dir
    report = ingest.ingest(folder, tmp_path / "labels.csv", tmp_path / "q.json", 0.2, 0.2, seed=1,
                           extra=leaky_set)
    reasons = {s["file"]: s for s in report["skipped"] if s["file"].startswith("appa/")}
    refused = {f for f, s in reasons.items() if s["reason"] == "outside_set"}
    assert refused == {"appa/img/listed_out.jpg", "appa/img/unlisted_out.jpg",
                       "appa/img/folder_out/secret.jpg", "appa/img/folder_out/other.jpg"}
    assert "elsewhere/secret.jpg" in reasons["appa/img/listed_out.jpg"]["detail"]  # says where to
    labels = pd.read_csv(tmp_path / "labels.csv")
    kept = set(labels["file"])
    assert not kept & refused  # no outside file in any split
    assert "appa/img/inside.jpg" in kept or any(  # a link inside the set is an ordinary file
        s["file"] == "appa/img/inside.jpg" and s["reason"] == "duplicate" for s in report["skipped"])
    assert report["skipped_by_reason"]["outside_set"] == 4
    assert json.loads((tmp_path / "q.json").read_text()) == report


def test_a_linked_set_folder_is_followed(tmp_path):
    """A set kept on another disk and linked into data/extra is a set like any other."""
    make_labelled(tmp_path / "disk" / "appa", n=4, seed=3)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "appa").symlink_to(tmp_path / "disk" / "appa", target_is_directory=True)
    rows, skipped = labelled.scan(tmp_path / "extra")
    assert [r.key for r in rows] == [f"appa/img/{i:04d}.jpg" for i in range(4)] and not skipped


def test_an_archive_follows_the_same_rule_as_its_unpacked_folder(tree, tmp_path):
    import tarfile

    root, images = tree
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="UTKFace", filter=lambda m: None if m.name.endswith("/loop") else m)
    # tarfile stores the symlinked folder as a link member (not followed): its image is not in
    # the archive; every other image, and no hidden or non-image file, is
    expected = sorted(os.path.basename(p) for p in images if not p.startswith("linked/"))
    assert sorted(name for name, _ in iter_images(archive)) == expected
