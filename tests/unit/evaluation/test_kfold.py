"""k-fold cross-validation: fold assignment (seed 004's KFold) and the mean / std over folds."""
import numpy as np
import pytest
from sklearn.model_selection import KFold

from agegender.evaluation.kfold import aggregate, assign_folds, flatten, nest, summary_markdown


def test_folds_match_seed_004_kfold_and_hold_out_each_row_once():
    folds = assign_folds(103, 10, shuffle=True, seed=42)
    assert sorted(np.bincount(folds)) == [10] * 7 + [11] * 3  # sizes differ by at most one
    for k, (_, held) in enumerate(KFold(10, shuffle=True, random_state=42).split(np.zeros(103))):
        assert set(np.flatnonzero(folds == k)) == set(held)
    assert np.array_equal(folds, assign_folds(103, 10, True, 42))  # deterministic
    assert not np.array_equal(folds, assign_folds(103, 10, True, 7))
    assert np.array_equal(assign_folds(6, 3, shuffle=False), [0, 0, 1, 1, 2, 2])


def test_fold_count_is_checked():
    with pytest.raises(ValueError, match="n_folds"):
        assign_folds(5, 1)
    with pytest.raises(ValueError, match="n_folds"):
        assign_folds(5, 6)


def test_mean_and_sample_std_over_folds_by_hand():
    folds = [{"age": {"mae": 6.0, "cs5": 0.5}, "fairness": {"race": {"mae_gap": None}}, "model": "x"},
             {"age": {"mae": 8.0, "cs5": 0.7}, "fairness": {"race": {"mae_gap": 2.0}}, "model": "x"},
             {"age": {"mae": 10.0, "cs5": 0.6}, "fairness": {"race": {"mae_gap": 4.0}}, "model": "x"}]
    result, per_fold = aggregate(folds)
    assert result["n_folds"] == 3
    assert result["mean"]["age"]["mae"] == 8.0
    assert result["std"]["age"]["mae"] == 2.0  # deviations -2, 0, 2: sqrt(8 / (3 - 1))
    assert result["mean"]["age"]["cs5"] == pytest.approx(0.6)
    assert result["std"]["age"]["cs5"] == pytest.approx(0.1)
    # a gap missing in one fold is averaged over the folds that have it
    assert result["mean"]["fairness"]["race"]["mae_gap"] == 3.0
    assert result["std"]["fairness"]["race"]["mae_gap"] == pytest.approx(np.sqrt(2), abs=1e-4)  # rounded to 4 places
    assert list(per_fold.columns) == ["fold", "age.mae", "age.cs5", "fairness.race.mae_gap"]
    assert per_fold["fold"].tolist() == [0, 1, 2] and per_fold["age.mae"].tolist() == [6, 8, 10]
    md = summary_markdown(result, per_fold)
    assert "# 3-fold cross-validation" in md
    assert "| age MAE (years) | 8.00 ± 2.00 | 6.00, 8.00, 10.00 |" in md
    assert "| fairness.race.mae_gap | 3.000 ± 1.414 | -, 2.000, 4.000 |" in md


def test_one_fold_value_has_no_std():
    result, _ = aggregate([{"a": 1.0}, {"a": None}])
    assert result["mean"]["a"] == 1.0 and result["std"]["a"] is None


def test_flatten_and_nest_round_trip():
    metrics = {"age": {"mae": 1.5}, "fairness": {"race": {"mae_gap": None}}, "test_images": 3,
               "model": "compact"}
    flat = flatten(metrics)
    assert flat == {"age.mae": 1.5, "fairness.race.mae_gap": None, "test_images": 3}
    assert nest(flat) == {"age": {"mae": 1.5}, "fairness": {"race": {"mae_gap": None}}, "test_images": 3}
