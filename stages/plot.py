"""Stage 5, plot: figures people read, under ``reports/figures/`` (PNG, declared as DVC plots).

Learning curves come from the DVCLive logs of the train stage; the rest from
``reports/predictions.csv``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on CI or servers
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from stages.bins import FIVE_YEAR
from stages.metrics import age_metrics

LEARNING_CURVES = [("loss", "total loss"), ("age_loss", "age loss"),
                   ("gender_accuracy", "gender accuracy"), ("age_mae", "age MAE (years)")]


def read_live_metric(live_dir: Path, name: str) -> dict[str, pd.DataFrame]:
    """DVCLive per-epoch series of one metric: {'train': df, 'val': df} (absent ones skipped)."""
    series = {}
    for split, folder in (("train", "train"), ("val", "eval")):
        path = live_dir / "plots" / "metrics" / folder / f"{name}.tsv"
        if path.is_file():
            series[split] = pd.read_csv(path, sep="\t")
    return series


def plot_learning_curves(live_dir: Path, out: Path) -> None:
    fig, axes = plt.subplots(1, len(LEARNING_CURVES), figsize=(4.2 * len(LEARNING_CURVES), 3.4))
    for ax, (name, title) in zip(axes, LEARNING_CURVES):
        for split, df in read_live_metric(live_dir, name).items():
            ax.plot(df["step"] + 1, df[name], marker=".", label=split)
        ax.set(title=title, xlabel="epoch")
        if ax.has_data():
            ax.legend()
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_age_scatter(df: pd.DataFrame, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(df["age"], df["pred_age"], s=4, alpha=0.35)
    top = max(df["age"].max(), df["pred_age"].max()) + 2
    ax.plot([0, top], [0, top], color="black", lw=1, label="identity")
    m = age_metrics(df["age"], df["pred_age"])
    ax.set(xlabel="true age (years)", ylabel="predicted age (years)", xlim=(0, top), ylim=(0, top),
           title=f"Predicted vs true age (MAE {m['mae']:.2f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_gender_confusion(df: pd.DataFrame, out: Path) -> None:
    names = ["male", "female"]
    cm = pd.crosstab(df["gender"], df["pred_gender"]).reindex(index=[0, 1], columns=[0, 1], fill_value=0)
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    sns.heatmap(cm, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax,
                xticklabels=names, yticklabels=names)
    ax.set(xlabel="predicted", ylabel="true",
           title=f"Gender (accuracy {np.trace(cm.to_numpy()) / cm.to_numpy().sum():.3f})")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_mae_by_age_group(df: pd.DataFrame, out: Path) -> None:
    groups = FIVE_YEAR.labels()
    err = (df["pred_age"] - df["age"]).abs()
    by = err.groupby(FIVE_YEAR.encode(df["age"])).agg(["mean", "size"]).reindex(range(len(groups)))
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.bar(groups, by["mean"].fillna(0))
    for i, (mae, n) in enumerate(zip(by["mean"], by["size"])):
        if not np.isnan(n):
            ax.text(i, (mae or 0) + 0.2, f"n={int(n)}", ha="center", fontsize=7, rotation=90)
    ax.set(xlabel="true age group (years)", ylabel="MAE (years)", title="Age MAE by age group")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def run(predictions_csv, live_dir, out_dir) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = pd.read_csv(predictions_csv)
    figures = {
        "learning_curves.png": lambda p: plot_learning_curves(Path(live_dir), p),
        "age_scatter.png": lambda p: plot_age_scatter(df, p),
        "gender_confusion.png": lambda p: plot_gender_confusion(df, p),
        "mae_by_age_group.png": lambda p: plot_mae_by_age_group(df, p),
    }
    written = []
    for name, draw in figures.items():
        draw(out_dir / name)
        written.append(out_dir / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", default="reports/predictions.csv")
    parser.add_argument("--live-dir", default="reports/train")
    parser.add_argument("--out-dir", default="reports/figures")
    args = parser.parse_args(argv)
    written = run(args.predictions, args.live_dir, args.out_dir)
    print(f"plot: wrote {len(written)} figures to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
