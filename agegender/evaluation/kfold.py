"""K-fold cross-validation (the optional ``kfold/dvc.yaml`` pipeline: ``dvc repro kfold/dvc.yaml``).

How much do the headline scores move with the data a model happens to be trained and scored on?
Seed 004's recipe: ``KFold(n_folds, shuffle=True, random_state=42)``. The folds are cut from the
train and validation images of the main split; **the test split is never touched**, so k-fold
cannot leak into the main evaluation. For each fold k:

1. the images of the other k-1 folds are split again, stratified by five-year age group x gender
   (``agegender.data.splits.stratified_split``, as ingest), into training and an inner validation set of the
   same share as the main pipeline's (it picks the best epoch and drives early stopping, exactly as
   in the ``train`` stage; the held-out fold never steers training);
2. the model is trained with :func:`agegender.training.fit.train_model` and the same params as
   the main pipeline;
3. it is scored on fold k with :func:`agegender.evaluation.scoring.evaluate_model` - the same
   metrics as the test split, headline fairness gaps included.

``aggregate`` then reports, for every headline metric, the mean and the sample standard deviation
(ddof=1) over the folds in ``kfold/metrics.json`` (a DVC metrics file) with the per-fold values in
``kfold/per_fold.csv`` and a readable ``kfold/summary.md``.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from agegender.data.arrays import LABEL_COLUMNS, ImageFiles, load_split
from agegender.data.splits import stratified_split
from agegender.params import Params

log = logging.getLogger(__name__)


def assign_folds(n_rows: int, n_folds: int, shuffle: bool = True, seed: int = 42) -> np.ndarray:
    """Fold index (0..n_folds-1) of each of ``n_rows`` rows, as sklearn's ``KFold`` (seed 004).

    Each row is held out exactly once; fold sizes differ by at most one.
    """
    from sklearn.model_selection import KFold

    if not 2 <= n_folds <= n_rows:
        raise ValueError(f"n_folds must be between 2 and the number of images ({n_rows}), got {n_folds}")
    folds = np.empty(n_rows, dtype=np.int64)
    splitter = KFold(n_splits=n_folds, shuffle=shuffle, random_state=seed if shuffle else None)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(n_rows))):
        folds[held_out] = k
    return folds


def pool(data_dir, labels_csv) -> tuple[ImageFiles, pd.DataFrame]:
    """The train + val images of the main split (read from disk on demand) and their label rows,
    in the same order."""
    labels = pd.read_csv(labels_csv)
    images, rows = [], []
    for split in ("train", "val"):
        images.append(load_split(data_dir, split)[0])
        rows.append(labels[labels["split"] == split])
    meta = pd.concat(rows, ignore_index=True)
    images = ImageFiles.concat(images)  # one view over both files: nothing read yet
    if len(images) != len(meta):
        raise ValueError(f"{len(images)} cached images but {len(meta)} train/val rows in {labels_csv}")
    return images, meta


def run_fold(params: Params, k: int, images: ImageFiles, meta: pd.DataFrame, folds: np.ndarray,
             out_dir: Path) -> dict:
    """Train on every fold but ``k`` and score on fold ``k``; write the fold's metrics,
    predictions and DVCLive logs under ``out_dir``. Returns the fold's metrics."""
    import keras

    from agegender.evaluation.scoring import evaluate_model, rounded
    from agegender.serving.saved import ModelInfo, load_model, save_model
    from agegender.training.fit import train_model

    rest = meta[folds != k]
    s = params.split
    inner = stratified_split(rest, s.val_fraction / (1 - s.test_fraction), 0.0, s.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    recipe = params.recipe
    parts = {}
    for split in ("train", "val"):
        chosen = rest.index[(inner == split).to_numpy()]
        parts[split] = images[chosen], meta.loc[chosen, LABEL_COLUMNS].to_numpy(dtype=np.int16)
    model, summary = train_model(params.model, recipe, params.train.seed, parts["train"], parts["val"],
                                 out_dir / "train", strategy=params.train.strategy)
    with tempfile.TemporaryDirectory(prefix=f"kfold{k}_") as tmp:  # scored as saved, like evaluate
        save_model(model, Path(tmp) / "model.keras", ModelInfo.for_family(params.model, summary.precision))
        model, info = load_model(Path(tmp) / "model.keras")
    held = meta[folds == k]
    cfg = params.evaluate
    df, metrics, _ = evaluate_model(model, info.age_output, images[held.index], held, cfg.batch_size,
                                    cfg.tta_flip, cfg.breakdown_min_group_size)
    del metrics["cost"]
    val_images = 0 if summary.final_fit else len(parts["val"][0])  # final fit: in train
    metrics["train"] = {"images": summary.train_images, "val_images": val_images,
                        "epochs_run": summary.epochs_run, "train_seconds": summary.train_seconds}
    metrics = {k_: metrics[k_] for k_ in ("age", "gender", "bins", "fairness", "train", "test_images")
               if k_ in metrics}
    (out_dir / "metrics.json").write_text(json.dumps(rounded(metrics), indent=2) + "\n")
    df.to_csv(out_dir / "predictions.csv", index=False)
    keras.backend.clear_session()
    return metrics


def run_cv(params: Params, data_dir, labels_csv, folds_dir: Path) -> list[dict]:
    """Every fold in turn; writes ``folds_dir/folds.csv`` (file, fold) and ``fold_<k>/``."""
    cfg = params.kfold
    images, meta = pool(data_dir, labels_csv)
    folds = assign_folds(len(meta), cfg.n_folds, cfg.shuffle, cfg.seed)
    folds_dir = Path(folds_dir)
    if folds_dir.exists():
        shutil.rmtree(folds_dir)
    folds_dir.mkdir(parents=True)
    pd.DataFrame({"file": meta["file"], "fold": folds}).to_csv(folds_dir / "folds.csv", index=False)
    results = []
    for k in range(cfg.n_folds):
        log.info("fold %d/%d: train on %d images, score on %d", k + 1, cfg.n_folds,
                 int((folds != k).sum()), int((folds == k).sum()))
        results.append(run_fold(params, k, images, meta, folds, folds_dir / f"fold_{k}"))
    return results


def flatten(metrics: dict, prefix: str = "") -> dict:
    """Nested metrics -> {'age.mae': 7.1, ...}; numbers only (None stays None, strings dropped)."""
    out = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def nest(flat: dict) -> dict:
    out: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def aggregate(fold_metrics: list[dict]) -> tuple[dict, pd.DataFrame]:
    """Mean and sample std (ddof=1) over folds of every metric -> (metrics dict, per-fold table).

    A metric that is None / NaN in some folds (e.g. a gap with too few groups) is averaged over the
    folds that have it (the per-fold table shows which). Std needs two such folds, else None.
    """
    per_fold = pd.DataFrame([flatten(m) for m in fold_metrics], dtype=float)
    per_fold.insert(0, "fold", range(len(per_fold)))
    values = per_fold.drop(columns="fold")
    mean, std = values.mean(), values.std(ddof=1)

    def clean(series):
        return {k: (None if pd.isna(v) else round(float(v), 4)) for k, v in series.items()}

    result = {"n_folds": len(per_fold), "mean": nest(clean(mean)), "std": nest(clean(std))}
    return result, per_fold


HEADLINE = [("age.mae", "age MAE (years)", 2), ("age.rmse", "age RMSE (years)", 2), ("age.cs5", "age CS@5", 3),
            ("age.five_year_accuracy", "five-year group accuracy", 3), ("gender.accuracy", "gender accuracy", 3),
            ("gender.f1", "gender F1", 3), ("gender.roc_auc", "gender ROC AUC", 3),
            ("bins.accuracy", "own-bin accuracy", 3), ("bins.one_off_accuracy", "own-bin one-off accuracy", 3)]


def summary_markdown(result: dict, per_fold: pd.DataFrame) -> str:
    flat_mean, flat_std = flatten(result["mean"]), flatten(result["std"])
    lines = [f"# {result['n_folds']}-fold cross-validation", "",
             "Folds cut from the train + val images (the test split is never used); mean ± sample std "
             "over folds. Per-fold values: `kfold/per_fold.csv`; per-fold predictions and learning "
             "curves: `kfold/folds/fold_<k>/`.", "", "| metric | mean ± std | per fold |", "|---|---:|---|"]
    names = [(k, label, d) for k, label, d in HEADLINE if k in flat_mean]
    names += [(k, k, 3) for k in flat_mean if k.startswith("fairness.")]
    for key, label, digits in names:
        m, s = flat_mean[key], flat_std.get(key)
        cell = "-" if m is None else f"{m:.{digits}f}" + ("" if s is None else f" ± {s:.{digits}f}")
        folds = ", ".join("-" if pd.isna(v) else f"{v:.{digits}f}" for v in per_fold[key])
        lines.append(f"| {label} | {cell} | {folds} |")
    return "\n".join(lines) + "\n"


def run_aggregate(folds_dir, metrics_out, per_fold_out, summary_out) -> dict:
    """Read every ``fold_<k>/metrics.json`` under ``folds_dir`` and write the mean / std metrics
    file, the per-fold CSV and the Markdown summary."""
    paths = sorted(Path(folds_dir).glob("fold_*/metrics.json"), key=lambda p: int(p.parent.name[5:]))
    if not paths:
        raise FileNotFoundError(f"no fold results under {folds_dir}: run the cv stage first")
    result, per_fold = aggregate([json.loads(p.read_text()) for p in paths])
    Path(metrics_out).write_text(json.dumps(result, indent=2) + "\n")
    per_fold.round(4).to_csv(per_fold_out, index=False)
    Path(summary_out).write_text(summary_markdown(result, per_fold))
    return result
