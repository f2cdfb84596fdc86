"""Finding faces with landmarks and cutting them out aligned like UTKFace's chips.

No face image is made here; the one real photograph is the portrait that ships inside
matplotlib (Grace Hopper, public domain, US Navy), as in the test_predict_* files.
"""
import math

import numpy as np
import pytest
from PIL import Image

from agegender.faces.alignment import (
    ALIGN_TEMPLATE,
    CHIP_PIXELS,
    aligned_chip,
    cut_face,
    similarity_transform,
)
from agegender.faces.detector import Box, Face
from agegender.faces.mtcnn import MtcnnDetector
from agegender.faces.registry import make_detector


def _similarity(angle_deg, scale, shift):
    a = math.radians(angle_deg)
    m = np.zeros((2, 3))
    m[:, :2] = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    m[:, 2] = shift
    return m


def _apply(m, pts):
    return pts @ m[:, :2].T + m[:, 2]


def test_similarity_transform_recovers_rotation_scale_and_shift():
    src = np.random.default_rng(0).uniform(0, 300, (5, 2))
    truth = _similarity(-23.0, 1.7, [40.0, -12.5])
    assert np.allclose(similarity_transform(src, _apply(truth, src)), truth, atol=1e-9)
    # a mirror image is not a similarity: the best fit keeps the orientation
    mirrored = src * [-1, 1]
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :2]) > 0


def _dots_photo(m, size=(900, 700)):
    """A grey photo with five coloured dots where ``m`` puts the chip landmarks."""
    img = np.full((size[1], size[0], 3), 90, np.uint8)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    points = _apply(m, ALIGN_TEMPLATE * CHIP_PIXELS)
    yy, xx = np.mgrid[:size[1], :size[0]]
    for (x, y), colour in zip(points, colours):
        img[(xx - x) ** 2 + (yy - y) ** 2 <= 36] = colour
    return Image.fromarray(img), points, colours


@pytest.mark.parametrize("angle, scale", [(28.0, 2.4), (-15.0, 0.6), (0.0, 1.0)])
def test_aligned_chip_puts_the_landmarks_where_utkface_has_them(angle, scale):
    """A face turned, scaled and moved in a photo comes out with its eyes, nose and mouth at the
    chip positions: the dots drawn there are found back within 2 px of a 200 px chip."""
    m = _similarity(angle, scale, [300.0, 150.0])
    photo, points, colours = _dots_photo(m)
    chip = np.asarray(aligned_chip(photo, points)).astype(int)
    assert chip.shape == (CHIP_PIXELS, CHIP_PIXELS, 3)
    for (x, y), colour in zip(ALIGN_TEMPLATE * CHIP_PIXELS, colours):
        near = np.abs(chip - colour).sum(axis=2) < 120
        assert near.any(), f"dot {colour} lost"
        cy, cx = np.argwhere(near).mean(axis=0)
        assert abs(cx - x) < 2 and abs(cy - y) < 2, (colour, cx, cy, x, y)


def test_aligned_chip_repeats_edges_for_a_face_at_the_border():
    m = _similarity(0.0, 1.0, [-60.0, -40.0])  # chip partly outside the photo, top left
    photo, points, _ = _dots_photo(m, size=(400, 400))
    chip = np.asarray(aligned_chip(photo, points))
    assert chip.shape == (CHIP_PIXELS, CHIP_PIXELS, 3)
    assert (chip[:30, :30] == 90).all()  # the photo's grey edge repeated, not black


def test_cut_face_without_landmarks_is_the_box_square():
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), np.uint8))
    box = Box(100, 100, 104, 104)
    assert np.array_equal(np.asarray(cut_face(photo, Face(box))), np.asarray(cut_face(photo, box)))


@pytest.fixture(scope="module")
def mtcnn():
    return MtcnnDetector()


def test_mtcnn_finds_a_real_face_with_landmarks_and_nothing_in_noise(mtcnn, portrait):
    faces = mtcnn(portrait)
    assert len(faces) == 1
    face = faces[0]
    assert face.confidence > 0.95 and face.landmarks.shape == (5, 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    b = face.box
    assert all(b.x <= x <= b.x + b.w and b.y <= y <= b.y + b.h for x, y in face.landmarks)
    rng = np.random.default_rng(0)
    assert mtcnn(Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))) == []
    assert mtcnn(Image.new("RGB", (10, 10))) == []


def test_mtcnn_finds_turned_faces_left_to_right_and_alignment_makes_them_upright(mtcnn, portrait):
    upright = np.asarray(aligned_chip(portrait, mtcnn(portrait)[0].landmarks), dtype=float)
    canvas = Image.new("RGB", (1400, 600), (40, 60, 80))
    angles = [25.0, -20.0, 0.0]
    for k, angle in enumerate(angles):
        small = portrait.resize((384, 450)).rotate(angle, resample=Image.Resampling.BICUBIC,
                                                    expand=True, fillcolor=(40, 60, 80))
        canvas.paste(small, (20 + 460 * k, 0))
    faces = mtcnn(canvas)
    assert len(faces) == 3 and [f.box.x for f in faces] == sorted(f.box.x for f in faces)
    for face, angle in zip(faces, angles):
        (lx, ly), (rx, ry) = face.landmarks[:2]
        tilt = -math.degrees(math.atan2(ry - ly, rx - lx))  # PIL turns counter-clockwise
        assert abs(tilt - angle) < 6, (tilt, angle)
        chip = np.asarray(aligned_chip(canvas, face.landmarks), dtype=float)
        # the same face cut upright from the turned copy as from the portrait itself
        assert np.abs(chip - upright)[40:160, 40:160].mean() < 20


def test_make_detector_names():
    assert isinstance(make_detector("mtcnn"), MtcnnDetector)
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("dlib")


def test_a_face_cut_by_the_photo_edge_is_found_and_cut_with_its_edge_repeated(mtcnn, portrait):
    whole = mtcnn(portrait)[0]
    left = whole.box.x + int(0.25 * whole.box.w)  # the photo starts a quarter into the face
    cut = portrait.crop((left, 0, portrait.width, portrait.height))
    faces = mtcnn(cut)
    assert len(faces) == 1 and faces[0].box.x <= 2
    # the same landmarks as in the whole portrait, shifted by the cut
    assert np.abs(faces[0].landmarks - (whole.landmarks - [left, 0])).max() < 8
    chip = np.asarray(aligned_chip(cut, faces[0].landmarks))
    assert chip.shape == (CHIP_PIXELS, CHIP_PIXELS, 3)
    # left of the photo's edge the chip repeats the photo's edge pixels (nearly constant along
    # each row; the face is turned a little, so not exactly), not black
    strip = chip[:, :5].astype(float)
    assert strip.std(axis=1).mean() < 1.5 and strip.mean() > 40
