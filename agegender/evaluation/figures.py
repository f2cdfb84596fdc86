"""The figures people read (PNG), drawn by the plot stage into ``reports/figures/``.

Learning curves come from the DVCLive logs of the train stage; the error-by-group charts from
``reports/breakdown.json``; the data-set charts from ``data/interim/labels.csv``; the face grid from
the cached test arrays ``data/processed/test_images.npy``; the rest from ``reports/predictions.csv``.
Every figure writes the number of faces beside what it shows. ``docs/evaluation.md`` describes each.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI or servers
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from agegender.data.bins import CUSTOM12, FIVE_YEAR, BinScheme
from agegender.data.labels import GENDERS
from agegender.evaluation.breakdown import BREAKDOWNS, TITLES
from agegender.evaluation.metrics import ECE_BINS, age_metrics, expected_calibration_error, reliability
from agegender.live import read_live_metric

LEARNING_CURVES = [("loss", "total loss"), ("age_loss", "age loss"),
                   ("age_mae", "age MAE (years)"), ("gender_accuracy", "gender accuracy")]
GRID_FACES = 20
DPI = 110


def _save(fig, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)


def plot_learning_curves(live_dir: Path, out: Path) -> None:
    """Loss, age loss, age MAE and gender accuracy per epoch, train vs val (seeds 001, 002, 004)."""
    fig, axes = plt.subplots(1, len(LEARNING_CURVES), figsize=(4.2 * len(LEARNING_CURVES), 3.4))
    validated = False
    for ax, (name, title) in zip(axes, LEARNING_CURVES):
        for split, df in read_live_metric(live_dir, name).items():
            validated |= split == "val"
            ax.plot(df["step"] + 1, df[name], marker=".", label=split)
        ax.set(title=title, xlabel="epoch")
        if ax.has_data():
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("Learning curves: train vs validation" if validated else
                 "Learning curves: training only (final fit on train + val, no validation)", y=1.0)
    _save(fig, out)


def plot_age_scatter(df: pd.DataFrame, out: Path) -> None:
    """Predicted vs true age, one dot per test face, with the identity line."""
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(df["age"], df["pred_age"], s=4, alpha=0.35)
    top = max(df["age"].max(), df["pred_age"].max()) + 2
    ax.plot([0, top], [0, top], color="black", lw=1, label="identity (perfect)")
    m = age_metrics(df["age"], df["pred_age"])
    ax.set(xlabel="true age (years)", ylabel="predicted age (years)", xlim=(0, top), ylim=(0, top),
           title=f"Predicted vs true age (n={len(df)}, MAE {m['mae']:.2f})")
    ax.legend(loc="upper left")
    _save(fig, out)


def plot_age_sorted(df: pd.DataFrame, out: Path) -> None:
    """Seed 004's line plot: test faces sorted by true age, true and predicted age of each."""
    d = df.sort_values(["age", "pred_age"], kind="stable").reset_index(drop=True)
    x = np.arange(len(d))
    window = max(5, len(d) // 50)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.scatter(x, d["pred_age"], s=3, alpha=0.3, color="tab:orange", label="predicted (each face)")
    ax.plot(x, d["pred_age"].rolling(window, center=True, min_periods=1).mean(), color="tab:red",
            lw=1.5, label=f"predicted (running mean of {window})")
    ax.plot(x, d["age"], color="black", lw=1.5, label="true age")
    ax.set(xlabel="test faces, sorted by true age", ylabel="age (years)",
           title=f"True and predicted age, faces sorted by true age (n={len(d)})")
    ax.legend(loc="upper left")
    _save(fig, out)


def plot_gender_confusion(df: pd.DataFrame, out: Path) -> None:
    names = [GENDERS[0], GENDERS[1]]
    cm = pd.crosstab(df["gender"], df["pred_gender"]).reindex(index=[0, 1], columns=[0, 1], fill_value=0)
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax,
                xticklabels=names, yticklabels=[f"{n} (n={c})" for n, c in zip(names, cm.sum(axis=1))])
    ax.set(xlabel="predicted", ylabel="true",
           title=f"Gender (n={len(df)}, accuracy {np.trace(cm.to_numpy()) / max(len(df), 1):.3f})")
    _save(fig, out)


def plot_gender_reliability(df: pd.DataFrame, out: Path) -> None:
    """Reliability diagram of the gender output: per bin of the predicted gender's confidence
    (``ECE_BINS`` equal-width bins over 0.5-1), the share predicted right against the mean stated
    confidence; on the diagonal, a stated 70 % is right 70 % of the time. The probability the
    predictor states (``gender_prob``) and, when the model has a temperature, the network's own
    (``gender_prob_raw``); the faces per bin below."""
    curves = [("gender_prob", "stated (as predicted)", "tab:blue")]
    if "gender_prob_raw" in df and not np.allclose(df["gender_prob_raw"], df["gender_prob"]):
        curves = [("gender_prob_raw", "network's own (before temperature)", "tab:orange"),
                  ("gender_prob", "after temperature (as predicted)", "tab:blue")]
    fig, (ax, bars) = plt.subplots(2, 1, figsize=(5.5, 6.4), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0.5, 1], [0.5, 1], color="black", lw=1, ls="--", label="perfectly calibrated")
    width = 0.5 / ECE_BINS
    for i, (column, label, colour) in enumerate(curves):
        table = reliability(df["gender"], df[column])
        seen = table["n"] > 0
        ece = expected_calibration_error(df["gender"], df[column])
        ax.plot(table["confidence"][seen], table["accuracy"][seen], marker="o", color=colour,
                label=f"{label}: ECE {ece:.3f}")
        offset = (i - (len(curves) - 1) / 2) * width / len(curves)
        bars.bar((table["lower"] + table["upper"]) / 2 + offset, table["n"],
                 width=width / len(curves), color=colour)
    ax.set(ylabel="share predicted right", xlim=(0.5, 1), ylim=(0.4, 1.02),
           title=f"Gender reliability (n={len(df)}, {ECE_BINS} bins of confidence)")
    ax.legend(loc="upper left", fontsize=8)
    bars.set(xlabel="stated confidence in the predicted gender", ylabel="faces")
    _save(fig, out)


def confusion(true_labels, pred_labels, order: list[str]) -> pd.DataFrame:
    """Counts of (true, predicted) label pairs over every label in ``order`` (rows = true)."""
    cm = pd.crosstab(pd.Categorical(true_labels, categories=order),
                     pd.Categorical(pred_labels, categories=order), dropna=False)
    return cm.reindex(index=order, columns=order, fill_value=0)


def plot_age_confusion(true_labels, pred_labels, order: list[str], scheme_title: str,
                       normalise: bool, out: Path) -> None:
    """Age-bin confusion heatmap: counts, or each true bin's row normalised to shares."""
    cm = confusion(true_labels, pred_labels, order)
    counts = cm.to_numpy()
    rows = counts.sum(axis=1, keepdims=True)
    values = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0) if normalise else counts
    size = max(5.0, 0.55 * len(order) + 2)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    text = np.where(counts > 0, np.vectorize(lambda v: f"{v:.2f}" if normalise else f"{int(v)}")(values), "")
    sns.heatmap(values, annot=text, fmt="", cmap="Blues", ax=ax,
                annot_kws={"fontsize": 7 if len(order) > 12 else 9}, square=True,
                xticklabels=order, yticklabels=[f"{g} (n={n})" for g, n in zip(order, rows[:, 0])],
                cbar_kws={"label": "share of the true bin" if normalise else "faces"},
                vmin=0, vmax=1 if normalise else None)
    exact = np.trace(counts) / max(counts.sum(), 1)
    kind = "normalised by true bin (rows sum to 1)" if normalise else "counts (empty cells: 0)"
    ax.set(xlabel="predicted age bin", ylabel="true age bin (faces)",
           title=f"Age confusion, {scheme_title}: {kind}\n"
                 f"n={counts.sum()}, exact-bin accuracy {exact:.3f}")
    ax.tick_params(axis="x", rotation=90)
    ax.tick_params(axis="y", rotation=0)
    _save(fig, out)


def plot_no_own_bins(model_note: str, out: Path) -> None:
    """Stand-in for the own-bins confusion of a model that predicts age without bins of its own,
    so every model writes the same declared files and ``dvc plots diff`` can set them side by side."""
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, f"{model_note}\nhas no age bins of its own:\nsee the five-year-group confusion",
            ha="center", va="center", fontsize=12)
    _save(fig, out)


def own_scheme(model) -> BinScheme | None:
    """The bin scheme of a bins model, from the saved model's information (agegender.json inside
    the .keras file ``model``); None for models without bins of their own."""
    from agegender.serving.saved import read_info  # no TensorFlow: reads the zip's JSON entry

    return read_info(model).age_output.scheme


def plot_bin_distribution(labels: pd.DataFrame, schemes: list[tuple[BinScheme, str]], out: Path) -> None:
    """Seed 000: images per age bin, stacked by split, for each scheme (total on each bar)."""
    fig, axes = plt.subplots(len(schemes), 1, figsize=(11, 3.6 * len(schemes)), squeeze=False)
    splits = [s for s in ("train", "val", "test") if s in set(labels["split"])]
    for ax, (scheme, title) in zip(axes[:, 0], schemes):
        names = scheme.labels()
        binned = pd.Series(scheme.label_of(labels["age"].to_numpy()), index=labels.index)
        table = pd.crosstab(pd.Categorical(binned, categories=names), labels["split"], dropna=False)
        table = table.reindex(index=names, columns=splits, fill_value=0)
        bottom = np.zeros(len(names))
        for split in splits:
            ax.bar(names, table[split], bottom=bottom, label=split)
            bottom += table[split].to_numpy()
        for i, total in enumerate(bottom):
            ax.text(i, total, f"{int(total)}", ha="center", va="bottom", fontsize=7)
        ax.set(ylabel="images", title=f"{title} (n={len(labels)})")
        ax.set_ylim(0, max(bottom.max(), 1) * 1.12)
        ax.tick_params(axis="x", rotation=45)
        ax.legend(title="split")
    axes[-1, 0].set_xlabel("age bin (years)")
    _save(fig, out)


def plot_gender_by_age_group(labels: pd.DataFrame, out: Path) -> None:
    """Seed 004: male and female image counts per five-year age group, whole kept data set."""
    names = FIVE_YEAR.labels()
    group = pd.Categorical(FIVE_YEAR.label_of(labels["age"].to_numpy()), categories=names)
    table = pd.crosstab(group, labels["gender"].map(GENDERS), dropna=False)
    table = table.reindex(index=names, columns=[GENDERS[0], GENDERS[1]], fill_value=0)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(12, 4.2))
    for offset, gender in ((-0.2, GENDERS[0]), (0.2, GENDERS[1])):
        bars = ax.bar(x + offset, table[gender], width=0.4, label=f"{gender} ({table[gender].sum()})")
        ax.bar_label(bars, fontsize=6, rotation=90, padding=2)
    ax.set_xticks(x, names, rotation=45)
    ax.set_ylim(0, max(table.to_numpy().max(), 1) * 1.18)
    ax.set(xlabel="age group (years)", ylabel="images",
           title=f"Male and female images per age group (all kept images, n={len(labels)})")
    ax.legend()
    _save(fig, out)


def plot_faces_grid(images: np.ndarray, df: pd.DataFrame, out: Path, seed: int = 0,
                    image_labels: np.ndarray | None = None) -> None:
    """Seed 002: 20 test faces (a seeded random sample), each titled 'predicted (true)' for age
    and gender. Green title: gender right and age within 5 years; red otherwise.

    Row i of ``images`` must be the face of row i of ``df``; with ``image_labels`` (the cached
    ``test_labels.npy``, columns age, gender, race) that is checked label by label."""
    aligned = len(images) == len(df)
    if aligned and image_labels is not None:
        aligned = np.array_equal(np.asarray(image_labels)[:, :3],
                                 df[["age", "gender", "race"]].to_numpy())
    if not aligned:
        raise ValueError(f"{len(images)} test images but {len(df)} prediction rows, or their labels "
                         "differ: the cached arrays and predictions.csv are out of step")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(df), size=min(GRID_FACES, len(df)), replace=False))
    fig, axes = plt.subplots(4, 5, figsize=(11, 10.5))
    short = {0: "M", 1: "F"}
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), pick):
        img = images[i]
        gray = img.shape[-1] == 1
        ax.imshow(img[..., 0] if gray else img, cmap="gray" if gray else None, vmin=0, vmax=255)
        row = df.iloc[i]
        good = row["pred_gender"] == row["gender"] and abs(row["pred_age"] - row["age"]) <= 5
        ax.set_title(f"age {row['pred_age']:.0f} ({row['age']})\n"
                     f"{short[int(row['pred_gender'])]} ({short[int(row['gender'])]})",
                     fontsize=10, color="tab:green" if good else "tab:red")
    fig.suptitle(f"{len(pick)} of {len(df)} test faces: predicted (true) age and gender\n"
                 "green: gender right and age within 5 years; red: otherwise", fontsize=11)
    _save(fig, out)


def plot_error_by_group(full: dict, name: str, out: Path) -> None:
    """Bar charts of one breakdown (MAE, CS@5, gender accuracy per group) with n on every bar.
    Grey bars: groups below the breakdown's minimum size, left out of gap and std."""
    rows = pd.DataFrame(full[name]["groups"])
    spread = full[name]["spread"]
    horizontal = len(rows) > 6
    panels = (("mae", "MAE (years)"), ("cs5", "CS@5 (share within 5 years)"),
              ("gender_accuracy", "gender accuracy"))
    if horizontal:
        fig, axes = plt.subplots(1, 3, figsize=(15, 0.32 * len(rows) + 2.2), sharey=True)
    else:
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    colours = ["tab:blue" if ok else "lightgrey" for ok in rows["in_spread"]]
    labels = [f"{g} (n={n})" for g, n in zip(rows["group"], rows["n"])]
    for ax, (score, title) in zip(axes, panels):
        values = rows[score].astype(float).fillna(0.0).to_numpy()
        if horizontal:
            bars = ax.barh(labels, values, color=colours)
            ax.invert_yaxis()
        else:
            bars = ax.bar(labels, values, color=colours)
        texts = ["" if n == 0 else (f"{v:.1f}" if score == "mae" else f"{v:.2f}")
                 for v, n in zip(values, rows["n"])]
        ax.bar_label(bars, texts, fontsize=7, padding=2)
        seen = rows["n"] > 0
        if seen.any():  # all faces: the mean over faces is the n-weighted mean of the group scores
            overall = float(np.average(values[seen], weights=rows["n"][seen]))
            (ax.axvline if horizontal else ax.axhline)(overall, color="black", ls="--", lw=1,
                                                        label=f"all faces {overall:.2f}")
            ax.legend(loc="lower right", fontsize=8)
        s = spread[score]
        gap = "gap - (fewer than 2 groups large enough)" if s["gap"] is None else \
            f"gap {s['gap']:.3f}, std {s['std']:.3f}"
        ax.set_title(f"{title}\n{gap}", fontsize=10)
        if score != "mae":
            ax.set_xlim(0, 1.1) if horizontal else ax.set_ylim(0, 1.1)
        else:
            top = max(values.max(), 1) * 1.15
            ax.set_xlim(0, top) if horizontal else ax.set_ylim(0, top)
        if not horizontal:
            ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"Error by {TITLES[name].lower()}: gap and std over groups with at least "
                 f"{full['min_group_size']} faces (grey: fewer, not counted)", fontsize=11)
    _save(fig, out)


def _own_bins_confusion(i: "Inputs", normalise: bool, out: Path) -> None:
    if i.scheme is None:
        plot_no_own_bins("This model predicts age in years and", out)
    else:
        plot_age_confusion(i.df["bin"], i.df["pred_bin"], i.scheme.labels(),
                           f"the model's own bins ({i.scheme.name})", normalise, out)


def _five_year_confusion(i: "Inputs", normalise: bool, out: Path) -> None:
    plot_age_confusion(i.df["age_group"], i.df["pred_age_group"], FIVE_YEAR.labels(), "five-year groups",
                       normalise, out)


def _bin_distribution(i: "Inputs", out: Path) -> None:
    schemes = [(FIVE_YEAR, "five-year groups (seed 004, every model is scored on them)"),
               (CUSTOM12, "seed 000's 12 bins")]
    if i.scheme is not None and i.scheme not in (FIVE_YEAR, CUSTOM12):
        schemes.append((i.scheme, f"the model's own bins ({i.scheme.name})"))
    plot_bin_distribution(i.labels, schemes, out)


def _faces_grid(i: "Inputs", out: Path) -> None:
    grid_labels = Path(i.test_images).with_name("test_labels.npy")  # written beside it by preprocess
    plot_faces_grid(np.load(i.test_images), i.df, out, i.grid_seed,
                    np.load(grid_labels) if grid_labels.is_file() else None)


@dataclass(frozen=True)
class Inputs:
    """What every figure is drawn from, read once by :func:`draw_all`."""
    df: pd.DataFrame  # reports/predictions.csv
    full: dict  # reports/breakdown.json
    labels: pd.DataFrame  # data/interim/labels.csv
    live_dir: Path  # the train stage's DVCLive logs
    test_images: Path  # the cached test arrays (the face grid)
    scheme: BinScheme | None  # the model's own age bins, if any
    grid_seed: int = 0


@dataclass(frozen=True)
class Figure:
    """One PNG of the plot stage: its file ``name``, the ``title`` the model card links it by,
    and ``draw(inputs, out_path)``."""
    name: str
    title: str
    draw: Callable[[Inputs, Path], None]


# Every PNG the plot stage writes, whatever the model: the one list of figures (a new figure is a
# row here). dvc.yaml declares their folder as plots; the model card links each, in this order.
FIGURES: list[Figure] = [
    Figure("learning_curves.png", "learning curves, train vs validation",
           lambda i, out: plot_learning_curves(i.live_dir, out)),
    Figure("age_scatter.png", "predicted vs true age", lambda i, out: plot_age_scatter(i.df, out)),
    Figure("age_sorted.png", "true and predicted age, faces sorted by true age",
           lambda i, out: plot_age_sorted(i.df, out)),
    Figure("age_confusion_five_year_normalised.png", "five-year age-group confusion, normalised",
           lambda i, out: _five_year_confusion(i, True, out)),
    Figure("age_confusion_five_year_counts.png", "five-year age-group confusion, counts",
           lambda i, out: _five_year_confusion(i, False, out)),
    Figure("age_confusion_own_bins_normalised.png", "confusion over the model's own age bins, normalised",
           lambda i, out: _own_bins_confusion(i, True, out)),
    Figure("age_confusion_own_bins_counts.png", "confusion over the model's own age bins, counts",
           lambda i, out: _own_bins_confusion(i, False, out)),
    Figure("gender_confusion.png", "gender confusion", lambda i, out: plot_gender_confusion(i.df, out)),
    Figure("gender_reliability.png", "gender reliability diagram: stated confidence vs accuracy",
           lambda i, out: plot_gender_reliability(i.df, out)),
    *(Figure(f"error_by_{b}.png", f"error by {TITLES[b].split(' (')[0].lower()}",
             lambda i, out, b=b: plot_error_by_group(i.full, b, out)) for b in BREAKDOWNS),
    Figure("age_bin_distribution.png", "images per age bin and split", _bin_distribution),
    Figure("gender_by_age_group.png", "male and female images per age group",
           lambda i, out: plot_gender_by_age_group(i.labels, out)),
    Figure("faces_grid.png", "20 test faces with predictions", _faces_grid),
]


def draw_all(predictions_csv, live_dir, out_dir, breakdown_json, labels_csv, test_images, *,
             model, grid_seed: int = 0) -> list[Path]:
    """Draw every figure of :data:`FIGURES` into ``out_dir``; returns the paths written. ``model``:
    the trained .keras file (its own age bins, if any, come from its saved information)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = Inputs(pd.read_csv(predictions_csv), json.loads(Path(breakdown_json).read_text()),
                    pd.read_csv(labels_csv), Path(live_dir), Path(test_images), own_scheme(model), grid_seed)
    written = []
    for figure in FIGURES:
        figure.draw(inputs, out_dir / figure.name)
        written.append(out_dir / figure.name)
    return written
