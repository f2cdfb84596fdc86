import pytest

from agegender.data.labels import LabelError, Labels, parse_filename
from synthetic import MALFORMED


def test_parses_valid_name():
    assert parse_filename("28_1_0_20170117180708809.jpg.chip.jpg") == Labels(28, 1, 0)


@pytest.mark.parametrize("name", MALFORMED)
def test_real_malformed_patterns_are_rejected_with_reason(name):
    with pytest.raises(LabelError) as err:
        parse_filename(name)
    assert err.value.reason == "malformed_name"
    assert name in str(err.value)


@pytest.mark.parametrize("name, problem", [
    ("24_0_1_20170116220224657 .jpg.chip.jpg", "space"),
    ("39_1_20170116174525125.jpg.chip.jpg", "3 underscore-separated fields"),
    ("55_0_0_20170116232725357jpg.chip.jpg", "does not end in '.jpg.chip.jpg'"),
])
def test_malformed_message_says_what_is_wrong(name, problem):
    with pytest.raises(LabelError, match=problem):
        parse_filename(name)


@pytest.mark.parametrize("name", [
    "117_0_0_20170110000000001.jpg.chip.jpg",  # age above 116
    "30_2_0_20170110000000001.jpg.chip.jpg",  # gender not 0/1
    "30_0_5_20170110000000001.jpg.chip.jpg",  # race above 4
])
def test_out_of_range_labels(name):
    with pytest.raises(LabelError) as err:
        parse_filename(name)
    assert err.value.reason == "out_of_range"


def test_range_edges_are_accepted():
    assert parse_filename("0_0_0_1.jpg.chip.jpg").age == 0
    assert parse_filename("116_1_4_1.jpg.chip.jpg") == Labels(116, 1, 4)
