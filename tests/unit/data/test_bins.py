import numpy as np
import pytest

from agegender.data.bins import CUSTOM12, FIVE_YEAR, RANGES10, SCHEMES, get_scheme
from agegender.model.targets import AgeOutput


def test_five_year_groups_match_seed_004():
    assert FIVE_YEAR.n_bins == 20
    assert FIVE_YEAR.encode([0, 4, 5, 94, 95, 116]).tolist() == [0, 0, 1, 18, 19, 19]
    assert FIVE_YEAR.labels()[0] == "0-4" and FIVE_YEAR.labels()[-1] == "95+"


def test_custom12_bins_match_seed_000():
    assert CUSTOM12.labels() == ["1-3", "4-10", "11-17", "18-22", "23-26", "27-32", "33-37",
                                 "38-45", "46-53", "54-62", "63-73", "74+"]


def test_ranges10_match_seed_003_example():
    # seed 003: ages [2, 6, 8, 15, 21] -> groups [1, 2, 2, 3, 5] (1-based)
    assert (RANGES10.encode([2, 6, 8, 15, 21]) + 1).tolist() == [1, 2, 2, 3, 5]
    assert RANGES10.n_bins == 10


@pytest.mark.parametrize("scheme", list(SCHEMES.values()), ids=list(SCHEMES))
def test_every_edge_round_trips(scheme):
    """An age on a lower edge, and the age just below it, land in neighbouring bins; the one-hot
    of each bin decodes to an age inside that bin."""
    for i, lo in enumerate(scheme.edges):
        assert scheme.encode([lo])[0] == i
        if i > 0:
            assert scheme.encode([lo - 1])[0] == i - 1
    one_hot = np.eye(scheme.n_bins)
    decoded = scheme.decode(one_hot)
    assert (scheme.encode(decoded) == np.arange(scheme.n_bins)).all()


def test_decode_is_expected_value_of_normalised_scores():
    probs = np.zeros((1, FIVE_YEAR.n_bins))
    probs[0, 2], probs[0, 4] = 2.0, 2.0  # unnormalised sigmoid-style scores
    assert FIVE_YEAR.decode(probs)[0] == pytest.approx((12 + 22) / 2)


def test_unknown_scheme_is_named():
    with pytest.raises(ValueError, match="nope"):
        get_scheme("nope")


@pytest.mark.parametrize("output", [AgeOutput("regression"), AgeOutput("bins", FIVE_YEAR, "softmax"),
                                    AgeOutput("distribution", sigma=2.0)], ids=lambda o: o.kind)
def test_age_output_encode_decode(output):
    ages = np.array([1, 7, 30, 64, 90])
    decoded = output.decode(output.encode(ages))
    tolerance = {"regression": 1e-6, "bins": 2.5,  # bins decode to their centre
                 "distribution": 1.0}[output.kind]  # the target Gaussian is cut at age 0
    assert np.abs(decoded - ages).max() <= tolerance
    if output.kind == "distribution":  # away from the ends it is exact
        assert np.abs(decoded[2:] - ages[2:]).max() < 1e-3


def test_age_output_tensor_decode_matches_numpy():
    output = AgeOutput("distribution", sigma=3.0)
    y = output.encode(np.array([3, 40, 80]))
    assert np.allclose(np.asarray(output.decode_tensor(y)), output.decode(y), atol=1e-4)


@pytest.mark.parametrize("scheme", list(SCHEMES.values()), ids=list(SCHEMES))
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_bins_output_round_trips_at_every_edge(scheme, activation):
    """Through the age output: an age on each edge and just below it, plus 0 and 116, encode to
    the right one-hot bin, decode to an age inside that bin and re-encode to the same bin."""
    output = AgeOutput("bins", scheme, activation)
    ages = sorted({0, 116, *scheme.edges, *(e - 1 for e in scheme.edges if e > 0)})
    one_hot = output.encode(ages)
    assert one_hot.shape == (len(ages), scheme.n_bins) and (one_hot.sum(axis=1) == 1).all()
    index = one_hot.argmax(axis=1)
    assert (index == scheme.encode(ages)).all()
    assert (output.predicted_bin(one_hot) == index).all()
    assert (scheme.encode(output.decode(one_hot)) == index).all()
    assert np.allclose(np.asarray(output.decode_tensor(one_hot)), output.decode(one_hot))


def test_open_ends_fall_into_first_and_last_bins():
    assert CUSTOM12.encode([0, 120, 116]).tolist() == [0, 11, 11]
    assert RANGES10.encode([0, 100, 101, 116]).tolist() == [0, 9, 9, 9]
    assert FIVE_YEAR.centres()[-1] == pytest.approx((95 + 116) / 2)


def test_class_weights_are_balanced_inverse_frequencies():
    from agegender.model.targets import class_weights

    w = class_weights([0, 0, 0, 1, 2, 2], n_bins=4)
    # n / (k * n_c) with n = 6 samples over k = 3 occurring bins; bin 3 never occurs
    assert w.tolist() == pytest.approx([6 / 9, 2.0, 1.0, 0.0])
    counts = np.array([3, 1, 2])
    assert (w[:3] * counts) == pytest.approx(np.full(3, 2.0))  # every bin carries the same weight


def test_balanced_sample_weights_use_own_bins_or_five_year_groups():
    from agegender.model.targets import balanced_sample_weights

    ages = np.array([2, 2, 2, 50])
    own = balanced_sample_weights(ages, AgeOutput("bins", CUSTOM12, "softmax"))
    assert own.dtype == np.float32 and own.mean() == pytest.approx(1.0)
    assert own.tolist() == pytest.approx([4 / 6, 4 / 6, 4 / 6, 2.0])
    regression = balanced_sample_weights(np.array([1, 3, 7]), AgeOutput("regression"))
    assert regression.tolist() == pytest.approx([0.75, 0.75, 1.5])  # groups 0-4, 0-4, 5-9


def test_group_sample_weights_lift_thin_race_gender_life_stage_cells():
    from agegender.model.targets import group_sample_weights

    # rows [age, gender, race]: three White men of 20-39, an Asian woman of 50, a woman of unknown race
    labels = np.array([[25, 0, 0], [30, 0, 0], [35, 0, 0], [50, 1, 2], [50, 1, -1]])
    full = group_sample_weights(labels, 1.0)
    assert full.dtype == np.float32 and full.mean() == pytest.approx(1.0)
    # three cells: each carries the same total weight (5/3), the lone faces three times a man's
    assert full.tolist() == pytest.approx([5 / 9, 5 / 9, 5 / 9, 5 / 3, 5 / 3])
    half = group_sample_weights(labels, 0.5)
    assert half[3] / half[0] == pytest.approx(3 ** 0.5) and half.mean() == pytest.approx(1.0)
    assert group_sample_weights(labels, 0.0).tolist() == pytest.approx([1.0] * 5)
    # same race and life stage, other gender: another cell; same cell at 13 and 19 (13-19)
    teens = np.array([[13, 0, 1], [19, 0, 1], [15, 1, 1]])
    assert group_sample_weights(teens, 1.0).tolist() == pytest.approx([0.75, 0.75, 1.5])
