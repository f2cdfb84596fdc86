"""The model card (``reports/model_card.md``), written from what the pipeline measured.

Everything in the card is read from pipeline outputs (data-quality report, labels, train summary,
metrics, breakdown) and ``params.yaml``; nothing is typed in by hand, so the card is regenerated
with every ``dvc repro`` and cannot drift from the model it describes.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from agegender.data import coverage as cov
from agegender.data.labels import GENDERS, RACE_NAMES, RACES, UNKNOWN_RACE
from agegender.evaluation import breakdown as bd
from agegender.evaluation.figures import FIGURES
from agegender.model.families import get_family
from agegender.params import Params
from agegender.training.summary import TrainSummary

REASONS = {
    "malformed_name": "the file name does not follow `age_gender_race_date.jpg.chip.jpg`, so its "
                      "labels cannot be read with confidence (never guessed)",
    "out_of_range": "a label outside age 0-116, gender 0/1 or race 0-4",
    "unreadable_image": "the image file cannot be decoded (truncated or corrupt)",
    "duplicate": "byte-identical to another image (the first name in sorted order is kept), so "
                 "it cannot sit in two splits",
    "bad_label": "a labels CSV row whose age is not a number, or gender or race not a known code",
    "missing_file": "a labels CSV row naming a file that is not in its folder",
    "unlabelled": "an image in a labelled set's folder that no labels CSV row names",
}
def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _pct(n: int, total: int) -> str:
    return f"{n} ({100 * n / total:.1f}%)" if total else str(n)


def data_section(quality: dict, labels: pd.DataFrame, source: str) -> list[str]:
    lines = ["## Data", "",
             f"UTKFace from `{source}`: {quality['images_seen']} images seen, "
             f"{quality['images_kept']} kept, {quality['images_skipped']} skipped. "
             "Age, gender and race come from each file name (`age_gender_race_date.jpg.chip.jpg`).", ""]
    if "kept_by_source" in quality:  # labelled sets of your own beside UTKFace (data.extra)
        lines += ["Kept images by source: " + ", ".join(
            f"`{k}` {_pct(v, quality['images_kept'])}" for k, v in quality["kept_by_source"].items())
            + ". A labelled set's labels come from its `labels.csv` (race may be unknown).", ""]
    if quality["skipped_by_reason"]:
        lines += ["| skipped because | images | why |", "|---|---:|---|"]
        lines += [f"| `{reason}` | {n} | {REASONS.get(reason, '')} |"
                  for reason, n in quality["skipped_by_reason"].items()]
        examples = quality.get("skipped", [])[:8]
        if examples:
            lines += ["", "Examples (the full list is in `reports/data_quality.json`):", ""]
            lines += [f"- {s['detail']}" for s in examples]
        lines.append("")
    total = len(labels)
    races = list(RACES.values()) + ([RACE_NAMES[UNKNOWN_RACE]]
                                    if (labels["race"] == UNKNOWN_RACE).any() else [])
    race = labels["race"].map(RACE_NAMES).value_counts().reindex(races, fill_value=0)
    gender = labels["gender"].map(GENDERS).value_counts().reindex(list(GENDERS.values()), fill_value=0)
    lines += ["Kept images by race: " + ", ".join(f"{k} {_pct(int(v), total)}" for k, v in race.items()) + ".",
              "", "By gender: " + ", ".join(f"{k} {_pct(int(v), total)}" for k, v in gender.items())
              + f". Ages {int(labels['age'].min())}-{int(labels['age'].max())}, "
              f"median {labels['age'].median():.0f}.", ""]
    return lines


def split_section(params: Params, quality: dict, summary: TrainSummary | None = None) -> list[str]:
    s = params.split
    counts = quality["split_counts"]
    use_of_val = ("The settings were chosen on validation, then the model was refitted on train + "
                  "validation (final fit)" if summary is not None and summary.final_fit
                  else "Validation picks the best epoch")
    return ["## Split", "",
            f"train {counts['train']}, validation {counts['val']}, test {counts['test']} images "
            f"(fractions val {s.val_fraction}, test {s.test_fraction}, seed {s.seed}), "
            f"stratified by five-year age group x gender. {use_of_val}; every "
            "figure below is on the test split, which training never sees. The split is by image, "
            "not by person (see limitations).", ""]


def _trained_here(recipe) -> str:
    """Which layers of a pretrained network this recipe trains: what the card's reader needs to
    know of what the model learned from this data and what it kept from the base."""
    if recipe.cached_top:
        return (f"the base's layers {', '.join(recipe.cached_top)} (from the features cache) and the "
                "heads; the rest of the base as pretrained")
    tune = recipe.fine_tune
    if tune is not None and tune.frozen_epochs < recipe.epochs:
        return (f"the heads, then from epoch {tune.frozen_epochs + 1} also the base's layers named "
                f"{', '.join(p + '*' for p in tune.unfreeze)}; the rest of the base as pretrained")
    return "the heads alone; the base as pretrained"


def model_section(params: Params, summary: TrainSummary | None) -> list[str]:
    name = params.model
    spec = get_family(name)
    lines = ["## Model and parameters", "",
             f"`{name}`: {spec.summary}. Input profile `{spec.profile}`, age output `{spec.age_output.kind}`"
             + (f" over bins `{spec.age_output.scheme.name}`" if spec.age_output.scheme else "") + ".", ""]
    if spec.provenance:
        lines += [f"Pretrained base: {spec.provenance}. Trained here: {_trained_here(params.recipe)}.", ""]
    if summary is not None:  # train_seconds counts every epoch, across a resume
        lines += [f"Trained {summary.epochs_run} epochs in {summary.train_seconds} s; "
                  + ("on train + val (final fit: no validation score); " if summary.final_fit
                     else f"best validation age MAE {summary.best_val_age_mae}; ")
                  + f"{summary.parameters} parameters.", "",
                  f"Trained on {summary.device} in {summary.precision} "
                  f"(`precision: {summary.precision_setting}`), {summary.strategy}.", ""]
    recipe = {"seed": params.train.seed, **params.recipe.model_dump()}
    # the architecture as params.yaml gives it (the builder's defaults live in families.py)
    arch = params.recipe.architecture
    recipe["architecture"] = (arch if isinstance(arch, dict)
                              else arch.model_dump(mode="json", exclude_unset=True))
    lines += [f"Training recipe (`models.{name}` in params.yaml, with the defaults of "
              "`agegender/params.py` for keys it leaves out, and `train.seed`):", "",
              "```yaml", yaml.safe_dump(recipe, sort_keys=True).rstrip(), "```", "",
              f"Evaluation: {yaml.safe_dump(params.evaluate.model_dump(), default_flow_style=True).strip()}", ""]
    return lines


def metrics_section(metrics: dict) -> list[str]:
    a, g = metrics["age"], metrics["gender"]
    lines = ["## Headline metrics", "", f"On the {metrics.get('test_images', '-')} test images:", "",
             "| metric | value |", "|---|---:|",
             f"| age MAE (years) | {_f(a['mae'], 2)} |", f"| age RMSE (years) | {_f(a['rmse'], 2)} |",
             f"| age CS@5 (share within 5 years) | {_f(a['cs5'])} |",
             f"| five-year age-group accuracy | {_f(a['five_year_accuracy'])} |",
             f"| gender accuracy | {_f(g['accuracy'])} |", f"| gender F1 (female positive) | {_f(g['f1'])} |",
             f"| gender ROC AUC | {_f(g['roc_auc'])} |"]
    if a.get("interval_coverage") is not None:
        lines += [f"| age 80 % interval: share of true ages inside | {_f(a['interval_coverage'])} |",
                  f"| age 80 % interval: mean width (years) | {_f(a['interval_width'], 1)} |"]
    if "ece" in g:
        bins = g.get("ece_bins", "-")
        if g.get("temperature") is not None:
            lines += [f"| gender calibration error (ECE, {bins} bins), network's own | "
                      f"{_f(g.get('ece_uncalibrated'))} |",
                      f"| gender calibration error (ECE), after temperature {_f(g['temperature'], 3)} "
                      f"(fitted on {g.get('temperature_fitted_on', '-')}) | {_f(g['ece'])} |"]
        else:
            lines += [f"| gender calibration error (ECE, {bins} bins; no temperature fitted) | "
                      f"{_f(g['ece'])} |"]
    if "bins" in metrics:
        lines += [f"| own-bin accuracy | {_f(metrics['bins']['accuracy'])} |",
                  f"| own-bin one-off accuracy | {_f(metrics['bins']['one_off_accuracy'])} |"]
    cost = metrics.get("cost", {})
    if cost:
        lines += [f"| inference (images / s, this machine) | {_f(cost.get('inference_images_per_second'), 1)} |"]
    return lines + [""]


def fairness_section(full: dict) -> list[str]:
    lines = ["## Fairness breakdown", "",
             "Scores per group of the test split, with the number of faces (n) each rests on. "
             f"Gap = max - min and std = standard deviation (ddof 0) across the groups with at least "
             f"{full['min_group_size']} faces (`evaluate.breakdown_min_group_size`); smaller groups "
             "are shown but not counted. Full tables: `reports/breakdown.json` / `.csv`.", "",
             "| breakdown | groups | MAE gap (std) | CS@5 gap (std) | gender acc. gap (std) |",
             "|---|---:|---:|---:|---:|"]
    for name in bd.BREAKDOWNS:
        s = full[name]["spread"]
        cells = [f"{_f(s[k]['gap'])} ({_f(s[k]['std'])})" for k in bd.SCORES]
        lines.append(f"| {bd.TITLES[name]} | {s['groups']} | " + " | ".join(cells) + " |")
    lines.append("")
    for name in bd.BREAKDOWNS:
        lines += [f"### {bd.TITLES[name]}", "", bd.markdown(full, name), ""]
    return lines


def coverage_set(summary: TrainSummary | None) -> str:
    """Which faces the model trained on: train + val for a final fit, else the train split."""
    return "train_val" if summary is not None and summary.final_fit else "train"


def coverage_section(quality: dict, summary: TrainSummary | None) -> list[str]:
    """Training faces per race x gender x life stage, thin cells marked (ingest's coverage report);
    nothing when the report has none."""
    report = quality.get("coverage")
    if report is None:
        return []
    which = coverage_set(summary)
    faces = "train + validation (the final fit trains on both)" if which == "train_val" else "the train split"
    thin = report[which]["thin"]
    lines = ["## Training data coverage", "",
             f"Faces of {faces} per race, gender and life stage (true age, years), "
             f"{report[which]['faces']} in all. \* fewer than {report['min_faces']} faces "
             f"(`data.coverage_min_faces`): a thin cell, {len(thin)} of {len(report[which]['cells'])}. "
             "Both sets are in `reports/data_quality.json` (`coverage`).", "",
             cov.markdown(report, which), ""]
    return lines


def limitations_section(full: dict, quality: dict | None = None,
                        summary: TrainSummary | None = None) -> list[str]:
    small = [row["group"] for name in ("race", "race_x_gender") for row in full[name]["groups"]
             if not row["in_spread"]]
    ages = [row["group"] for row in full["age_group"]["groups"] if not row["in_spread"]]
    lines = ["## Known limitations", "",
             "- **Label noise.** UTKFace's age, gender and race labels are not ground truth: "
             "according to the data set's authors they were estimated by an algorithm (DEX) and "
             "checked by a human annotator, and some are visibly wrong. An MAE of a few years is "
             "partly label error; small differences between models or groups can be within it.",
             "- **Race code 4 (Others) is a mixture** (the authors list Hispanic, Latino, Middle "
             "Eastern among others). Its scores describe no single population; read them as "
             "'everyone not in codes 0-3'. The race and gender labels are annotator judgements from "
             "appearance, with gender binary only.",
             "- **Splits are not subject-exclusive.** UTKFace has no identity labels, so the same "
             "person can appear in train and test. The test scores are likely optimistic for faces "
             "of people never seen in training.",
             "- **One test split, one seed.** Gaps between groups carry sampling noise, most of all "
             "for small groups; `dvc repro kfold/dvc.yaml` gives mean and std over folds."]
    if small or ages:
        lines.append(f"- **Small groups** (fewer than {full['min_group_size']} test faces, left out "
                     "of the gaps): " + ", ".join(small + [f"age {a}" for a in ages]) + ".")
    report = (quality or {}).get("coverage")
    if report is not None:
        thin = report[coverage_set(summary)]["thin"]
        lines.append(f"- **Where not to trust the model: thin training cells.** The model saw fewer "
                     f"than {report['min_faces']} training faces of "
                     + (", ".join(thin) if thin else "no race x gender x life-stage cell")
                     + " (see \"Training data coverage\"). Its errors there are barely measured "
                     "(few test faces) and likely larger than the headline figures; faces unlike "
                     "UTKFace's (other populations, cameras, ages) are not covered at all.")
    lines.append("- **Test faces are UTKFace's aligned chips.** Photos reach the model through the "
                 "predictor's face finding and alignment; faces framed looser or tighter than the "
                 "chips and faces in turned, photo-like pictures are measured by "
                 "`benchmarks/quality/framing.py` and `benchmarks/quality/photo_canvas.py` "
                 "(docs/results.md, docs/predict.md), other image sources and poses were not evaluated here.")
    return lines + [""]


def figures_section() -> list[str]:
    lines = ["## Figures", "", "In `reports/figures/` (relative links from this file):", ""]
    lines += [f"- [{f.title}](figures/{f.name})" for f in FIGURES]
    return lines + [""]


def render(params: Params, quality: dict, labels: pd.DataFrame, summary: TrainSummary | None, metrics: dict,
           full: dict) -> str:
    lines = [f"# Model card: `{params.model}` age and gender estimator", "",
             "Generated by the `model_card` stage of `dvc repro`; do not edit by hand.", "",
             "Estimates age (years) and gender (male / female) from an aligned, cropped face image. "
             "Research and teaching use; not for decisions about individuals.", ""]
    lines += data_section(quality, labels, params.data.source)
    lines += split_section(params, quality, summary)
    lines += model_section(params, summary)
    lines += metrics_section(metrics)
    lines += fairness_section(full)
    lines += coverage_section(quality, summary)
    lines += figures_section()
    lines += limitations_section(full, quality, summary)
    return "\n".join(lines)


def write_card(params: Params, quality_json, labels_csv, summary_json, metrics_json, breakdown_json,
               out) -> str:
    """Render the card from the pipeline's outputs and write it to ``out``; returns its text."""
    summary_path = Path(summary_json)
    text = render(params, json.loads(Path(quality_json).read_text()), pd.read_csv(labels_csv),
                  TrainSummary.read(summary_path) if summary_path.is_file() else None,
                  json.loads(Path(metrics_json).read_text()), json.loads(Path(breakdown_json).read_text()))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text)
    return text
