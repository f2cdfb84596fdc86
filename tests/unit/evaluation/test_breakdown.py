"""Fairness breakdown maths on small cases worked out by hand."""
import json

import numpy as np
import pandas as pd
import pytest

from agegender.evaluation import breakdown as bd
from agegender.evaluation.metrics import age_metrics


@pytest.fixture
def faces():
    """Six test faces. Errors and gender calls, by hand:

    White  age 20 -> 22 (err 2),  male,   p=0.2 -> male   (right)
    White  age 30 -> 40 (err 10), female, p=0.3 -> male   (wrong)
    Black  age 50 -> 51 (err 1),  female, p=0.9 -> female (right)
    Black  age 60 -> 63 (err 3),  female, p=0.8 -> female (right)
    Black  age 70 -> 70 (err 0),  male,   p=0.1 -> male   (right)
    Asian  age 5  -> 15 (err 10), male,   p=0.6 -> female (wrong)
    No Indian or Others faces.
    """
    return pd.DataFrame({
        "age":         [20, 30, 50, 60, 70, 5],
        "pred_age":    [22, 40, 51, 63, 70, 15],
        "gender":      [0, 1, 1, 1, 0, 0],
        "gender_prob": [0.2, 0.3, 0.9, 0.8, 0.1, 0.6],
        "race":        [0, 0, 1, 1, 1, 2],
    })


def _rows(full, name):
    return {row["group"]: row for row in full[name]["groups"]}


def test_race_table_by_hand(faces):
    full = bd.breakdown(faces)
    rows = _rows(full, "race")
    assert list(rows) == ["White", "Black", "Asian", "Indian", "Others"]
    assert rows["White"] == {"group": "White", "n": 2, "mae": 6.0, "cs5": 0.5,
                             "gender_accuracy": 0.5, "in_spread": True}
    assert rows["Black"]["n"] == 3 and rows["Black"]["mae"] == pytest.approx(4 / 3)
    assert rows["Black"]["cs5"] == 1.0 and rows["Black"]["gender_accuracy"] == 1.0
    assert rows["Asian"] == {"group": "Asian", "n": 1, "mae": 10.0, "cs5": 0.0,
                             "gender_accuracy": 0.0, "in_spread": True}
    # empty groups are listed with n = 0 and no scores, and stay out of the spread
    assert rows["Indian"] == {"group": "Indian", "n": 0, "mae": None, "cs5": None,
                              "gender_accuracy": None, "in_spread": False}


def test_race_gap_and_std_by_hand(faces):
    s = bd.breakdown(faces)["race"]["spread"]
    assert s["groups"] == 3 and s["min_n"] == 1
    # MAE over White, Black, Asian = 6, 4/3, 10: gap 10 - 4/3; mean 52/9; population std
    mean = (6 + 4 / 3 + 10) / 3
    assert s["mae"]["gap"] == pytest.approx(26 / 3)
    assert s["mae"]["std"] == pytest.approx(np.sqrt(((6 - mean) ** 2 + (4 / 3 - mean) ** 2
                                                     + (10 - mean) ** 2) / 3))
    assert s["mae"]["std"] == pytest.approx(3.5416, abs=1e-4)
    assert (s["mae"]["best"], s["mae"]["worst"]) == ("Black", "Asian")
    # CS@5 and gender accuracy are both 0.5, 1, 0: gap 1, std sqrt(0.5 / 3)
    for score in ("cs5", "gender_accuracy"):
        assert s[score]["gap"] == pytest.approx(1.0)
        assert s[score]["std"] == pytest.approx(np.sqrt(0.5 / 3))
        assert (s[score]["best"], s[score]["worst"]) == ("Black", "Asian")


def test_min_group_size_leaves_small_groups_out_of_the_spread(faces):
    full = bd.breakdown(faces, min_group_size=2)
    rows = _rows(full, "race")
    assert rows["Asian"]["n"] == 1 and rows["Asian"]["in_spread"] is False
    assert rows["Asian"]["mae"] == 10.0  # still shown
    s = full["race"]["spread"]
    assert s["groups"] == 2 and s["min_n"] == 2
    assert s["mae"]["gap"] == pytest.approx(6 - 4 / 3)
    assert s["mae"]["std"] == pytest.approx((6 - 4 / 3) / 2)  # two groups: std = half the gap
    assert s["cs5"]["gap"] == pytest.approx(0.5) and s["cs5"]["std"] == pytest.approx(0.25)


def test_fewer_than_two_groups_large_enough_gives_none(faces):
    none = {"gap": None, "std": None, "best": None, "worst": None}
    full = bd.breakdown(faces, min_group_size=100)
    assert full["gender"]["spread"]["mae"] == none
    assert bd.headline(full)["gender"]["mae_gap"] is None
    one = bd.breakdown(faces, min_group_size=3)["race"]["spread"]  # only Black has 3 faces
    assert one["groups"] == 1 and one["mae"] == none


def test_gender_age_group_and_race_x_gender_by_hand(faces):
    full = bd.breakdown(faces)
    gender = _rows(full, "gender")
    assert list(gender) == ["male", "female"]
    # male: errors 2, 0, 10; calls right, right, wrong. female: errors 10, 1, 3; wrong, right, right
    assert gender["male"]["mae"] == pytest.approx(4.0) and gender["female"]["mae"] == pytest.approx(14 / 3)
    assert gender["male"]["cs5"] == pytest.approx(2 / 3) and gender["female"]["cs5"] == pytest.approx(2 / 3)
    assert gender["male"]["gender_accuracy"] == pytest.approx(2 / 3)
    s = full["gender"]["spread"]
    assert s["mae"]["gap"] == pytest.approx(2 / 3) and s["mae"]["std"] == pytest.approx(1 / 3)
    assert s["cs5"]["gap"] == 0.0 and s["cs5"]["std"] == 0.0

    ages = _rows(full, "age_group")
    assert len(ages) == 20 and list(ages)[0] == "0-4" and list(ages)[-1] == "95+"
    assert {g: r["n"] for g, r in ages.items() if r["n"]} == {
        "5-9": 1, "20-24": 1, "30-34": 1, "50-54": 1, "60-64": 1, "70-74": 1}
    assert ages["5-9"]["mae"] == 10.0 and ages["70-74"]["mae"] == 0.0
    assert full["age_group"]["spread"]["mae"]["gap"] == 10.0

    rg = _rows(full, "race_x_gender")
    assert len(rg) == 10 and list(rg)[:2] == ["White male", "White female"]
    assert {g: (r["n"], r["mae"]) for g, r in rg.items() if r["n"]} == {
        "White male": (1, 2.0), "White female": (1, 10.0), "Black male": (1, 0.0),
        "Black female": (2, 2.0), "Asian male": (1, 10.0)}


def test_life_stages_and_life_stage_x_gender_by_hand(faces):
    """Ages 20, 30, 50, 60, 70, 5 fall in 20-39 (two), 40-59, 60+ (two) and 3-12."""
    full = bd.breakdown(faces)
    stages = _rows(full, "life_stage")
    assert list(stages) == ["0-2", "3-12", "13-19", "20-39", "40-59", "60+"]
    assert {g: r["n"] for g, r in stages.items()} == {"0-2": 0, "3-12": 1, "13-19": 0, "20-39": 2,
                                                      "40-59": 1, "60+": 2}
    # 20-39: errors 2 and 10, calls right and wrong; 60+: errors 3 and 0, both right
    assert stages["20-39"]["mae"] == 6.0 and stages["20-39"]["gender_accuracy"] == 0.5
    assert stages["60+"]["mae"] == 1.5 and stages["60+"]["gender_accuracy"] == 1.0
    assert stages["3-12"]["gender_accuracy"] == 0.0 and stages["0-2"]["mae"] is None
    assert full["life_stage"]["spread"]["mae"]["worst"] == "3-12"
    sg = _rows(full, "life_stage_x_gender")
    assert len(sg) == 12 and list(sg)[:2] == ["0-2 male", "0-2 female"]
    assert {g: r["n"] for g, r in sg.items() if r["n"]} == {
        "3-12 male": 1, "20-39 male": 1, "20-39 female": 1, "40-59 female": 1, "60+ male": 1,
        "60+ female": 1}


def test_group_maes_weighted_by_counts_give_the_overall_mae(faces):
    overall = age_metrics(faces["age"], faces["pred_age"])["mae"]
    full = bd.breakdown(faces)
    for name in bd.BREAKDOWNS:
        rows = [r for r in full[name]["groups"] if r["n"]]
        assert sum(r["n"] for r in rows) == len(faces)
        assert sum(r["n"] * r["mae"] for r in rows) / len(faces) == pytest.approx(overall)


def test_headline_long_table_and_markdown(faces):
    full = bd.breakdown(faces)
    json.dumps(full, allow_nan=False)  # valid JSON: no NaN anywhere
    head = bd.headline(full)
    assert set(head) == set(bd.BREAKDOWNS)
    assert set(head["race"]) == {f"{s}_{k}" for s in bd.SCORES for k in ("gap", "std")}
    assert head["race"]["mae_gap"] == pytest.approx(26 / 3)
    long = bd.long_table(full)
    assert len(long) == 5 + 2 + 20 + 6 + 10 + 12
    assert list(long.columns) == ["breakdown", "group", "n", "mae", "cs5", "gender_accuracy", "in_spread"]
    md = bd.markdown(bd.breakdown(faces, min_group_size=2), "race")
    assert "| White | 2 | 6.00 | 0.500 | 0.500 |" in md
    assert "| Asian * | 1 | 10.00 |" in md and "fewer than 2 faces" in md
    assert "MAE gap 4.667" in md


def test_unknown_breakdown(faces):
    with pytest.raises(ValueError, match="unknown breakdown"):
        bd.table(faces, "hair")
