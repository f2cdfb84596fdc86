"""The model card says how validation was used: best-epoch pick, or settings only (final fit)."""
import json
from dataclasses import replace
from pathlib import Path

import pytest

from agegender.evaluation.model_card import model_section, split_section
from agegender.model.summary import TrainSummary
from agegender.params import parse_params

PARAMS = parse_params({"data": {"source": "x"}, "split": {"seed": 42, "val_fraction": 0.1,
                                                          "test_fraction": 0.1}})
QUALITY = {"split_counts": {"train": 80, "val": 10, "test": 10}}
# the summary a 2-epoch final-fit run of tests/train_job.py wrote at commit 53e927c
RECORDED = Path(__file__).parent / "fixtures" / "train_summary_53e927c.json"
SUMMARY = TrainSummary.from_json(json.loads(RECORDED.read_text()))


def test_split_section_says_validation_picks_the_best_epoch():
    text = "\n".join(split_section(PARAMS, QUALITY, replace(SUMMARY, final_fit=False)))
    assert "train 80, validation 10, test 10" in text
    assert "Validation picks the best epoch" in text and "refitted" not in text


def test_split_section_says_a_final_fit_trained_on_validation_too():
    text = "\n".join(split_section(PARAMS, QUALITY, SUMMARY))
    assert "refitted on train + validation" in text and "picks the best epoch" not in text


def test_a_recorded_train_summary_parses_and_writes_back_in_the_same_format(tmp_path):
    data = json.loads(RECORDED.read_text())
    assert SUMMARY.to_json() == data and list(SUMMARY.to_json()) == list(data)  # keys in order
    SUMMARY.write(tmp_path / "s.json")
    assert (tmp_path / "s.json").read_text() == json.dumps(data, indent=2) + "\n"  # the train stage's format
    assert TrainSummary.read(tmp_path / "s.json") == SUMMARY


def test_a_train_summary_with_a_missing_or_unknown_key_is_refused_naming_it(tmp_path):
    from agegender.errors import UserError

    data = SUMMARY.to_json()
    del data["device"]
    (tmp_path / "s.json").write_text(json.dumps({**data, "epoch_run": 2}))
    with pytest.raises(UserError, match=r"s\.json: .*missing keys \['device'\].*unknown keys \['epoch_run'\]"):
        TrainSummary.read(tmp_path / "s.json")


def test_model_section_reads_the_summary_by_attribute():
    text = "\n".join(model_section(PARAMS, SUMMARY))
    assert f"Trained {SUMMARY.epochs_run} epochs in {SUMMARY.train_seconds} s" in text
    assert "final fit: no validation score" in text and SUMMARY.device in text
