"""The model card says how validation was used: best-epoch pick, or settings only (final fit)."""
from agegender.evaluation.model_card import split_section
from agegender.params import parse_params

PARAMS = parse_params({"data": {"source": "x"}, "split": {"seed": 42, "val_fraction": 0.1,
                                                          "test_fraction": 0.1}})
QUALITY = {"split_counts": {"train": 80, "val": 10, "test": 10}}


def test_split_section_says_validation_picks_the_best_epoch():
    text = "\n".join(split_section(PARAMS, QUALITY, {"final_fit": False}))
    assert "train 80, validation 10, test 10" in text
    assert "Validation picks the best epoch" in text and "refitted" not in text


def test_split_section_says_a_final_fit_trained_on_validation_too():
    text = "\n".join(split_section(PARAMS, QUALITY, {"final_fit": True}))
    assert "refitted on train + validation" in text and "picks the best epoch" not in text
