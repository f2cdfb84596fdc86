"""The plot stage draws every figure of FIGURES into the folder dvc.yaml declares, for models with
and without own bins."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agegender.data.bins import CUSTOM12, FIVE_YEAR
from agegender.evaluation import breakdown
from agegender.evaluation import figures as plot
from dvc_project import declared_figures
from locations import ROOT


def test_dvc_yaml_declares_the_figures_folder_as_plots_and_as_the_plot_output():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert "${paths.figures}" in dvc["plots"]
    assert dvc["stages"]["plot"]["outs"] == ["${paths.figures}"]
    assert "--out-dir ${paths.figures}" in dvc["stages"]["plot"]["cmd"]
    names = [figure.name for figure in plot.FIGURES]
    assert len(set(names)) == len(names) == 18 and all(name.endswith(".png") for name in names)


def _inputs(tmp_path: Path, n: int, own_bins: bool, channels: int = 3):
    rng = np.random.default_rng(0)
    age = rng.integers(1, 100, n)
    df = pd.DataFrame({"file": [f"{a}_x.jpg" for a in age], "age": age, "gender": rng.integers(0, 2, n),
                       "race": rng.integers(0, 5, n)})
    df["pred_age"] = np.clip(age + rng.normal(0, 6, n), 0, 116).round(2)
    df["gender_prob"] = rng.random(n).round(4)
    if own_bins:  # a model with a temperature: the reliability diagram draws before and after
        df["gender_prob_raw"] = np.clip(df["gender_prob"] * 1.3 - 0.15, 0, 1).round(4)
    df["pred_gender"] = (df["gender_prob"] >= 0.5).astype(int)
    df["age_group"] = FIVE_YEAR.label_of(df["age"])
    df["pred_age_group"] = FIVE_YEAR.label_of(df["pred_age"])
    if own_bins:
        df["bin"] = CUSTOM12.label_of(df["age"])
        df["pred_bin"] = CUSTOM12.label_of(df["pred_age"])
    df.to_csv(tmp_path / "predictions.csv", index=False)
    (tmp_path / "breakdown.json").write_text(json.dumps(breakdown.breakdown(df, 5)))
    labels = df[["file", "age", "gender", "race"]].assign(split="test")
    labels = pd.concat([labels, labels.assign(split="train")])
    labels.to_csv(tmp_path / "labels.csv", index=False)
    np.save(tmp_path / "test_images.npy", rng.integers(0, 255, (n, 16, 16, channels), dtype=np.uint8))
    np.save(tmp_path / "test_labels.npy", df[["age", "gender", "race"]].to_numpy(dtype=np.int16))
    live = tmp_path / "train" / "plots" / "metrics"
    for folder in ("train", "eval"):
        (live / folder).mkdir(parents=True)
        for name, _ in plot.LEARNING_CURVES:
            pd.DataFrame({"step": [0, 1, 2], name: [3.0, 2.0, 1.5]}).to_csv(
                live / folder / f"{name}.tsv", sep="\t", index=False)
    return tmp_path


@pytest.mark.parametrize("own_bins, n, channels", [(False, 60, 3), (True, 12, 1)])
def test_plot_writes_every_declared_figure(tmp_path, own_bins, n, channels):
    src = _inputs(tmp_path, n, own_bins, channels)
    out = tmp_path / Path(declared_figures()[0]).parent  # params.yaml's paths.figures
    written = plot.draw_all(src / "predictions.csv", src / "train", out, src / "breakdown.json",
                            src / "labels.csv", src / "test_images.npy",
                            model=_model_info_file(tmp_path, "custom12" if own_bins else "compact"))
    assert len(written) == len(declared_figures())
    for name in declared_figures():
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 1000, name


def _model_info_file(tmp_path: Path, family: str) -> Path:
    """A stand-in .keras file holding only the project's model information (all the plot reads)."""
    import zipfile

    from agegender.serving.saved import INFO_ENTRY, ModelInfo

    path = tmp_path / f"{family}.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(INFO_ENTRY, json.dumps(ModelInfo.for_family(family, "float32").to_json()))
    return path


def test_own_scheme_comes_from_the_saved_model_information(tmp_path):
    assert plot.own_scheme(_model_info_file(tmp_path, "custom12")) is CUSTOM12
    assert plot.own_scheme(_model_info_file(tmp_path, "ranges10")).name == "ranges10"
    assert plot.own_scheme(_model_info_file(tmp_path, "compact")) is None


def test_faces_grid_refuses_arrays_out_of_step(tmp_path):
    df = pd.DataFrame({"age": [1, 40], "pred_age": [2.0, 38.0], "gender": [0, 1], "race": [0, 2],
                       "pred_gender": [0, 1]})
    with pytest.raises(ValueError, match="out of step"):
        plot.plot_faces_grid(np.zeros((3, 8, 8, 3), np.uint8), df, tmp_path / "x.png")
    swapped = np.array([[40, 1, 2], [1, 0, 0]])
    with pytest.raises(ValueError, match="out of step"):
        plot.plot_faces_grid(np.zeros((2, 8, 8, 3), np.uint8), df, tmp_path / "x.png", image_labels=swapped)
    plot.plot_faces_grid(np.zeros((2, 8, 8, 3), np.uint8), df, tmp_path / "x.png", image_labels=swapped[::-1])
    assert (tmp_path / "x.png").is_file()
