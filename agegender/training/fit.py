"""The fit engine: a :class:`~agegender.training.setup.Setup` trained phase by phase, resumable, with
its per-epoch metrics in DVCLive (``dvc plots show`` draws the learning curves).

Contract: :func:`fit` takes a :class:`FitRequest` (what to train, where its logs and backup go) and
returns the trained model and a :class:`~agegender.training.summary.TrainSummary`, the typed form of ``train_summary.json``
that evaluate, k-fold and the model card read by attribute. :func:`train_model` is the whole way
from a recipe and the splits (setup, then fit).

The weights of the best validation epoch are restored before returning; with ``final_fit`` the
model trains on train+val for its fixed schedule and keeps the last epoch's weights. With a backup
folder a run killed mid-way resumes from its last finished epoch (:mod:`agegender.training.resume`:
Keras' BackupAndRestore per phase, plus the layers' random generator states; a finished phase is not
trained again). Keras' private API is used only through :mod:`agegender.training.keras_compat`.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from agegender import hardware
from agegender.live import read_live_metric
from agegender.training import keras_compat
from agegender.params import ParamsError, Recipe
from agegender.training import resume
from agegender.training.phases import Phase
from agegender.training.setup import Setup, setup_training
from agegender.training.summary import TrainSummary

log = logging.getLogger(__name__)
MONITOR = "val_age_mae"  # early stopping, plateau schedule and the best epoch all watch this


@dataclass(frozen=True)
class FitRequest:
    """What :func:`fit` trains and where it writes.

    ``live_dir``: the DVCLive folder the run's logs end in. ``verbose``: Keras' fit verbosity (0
    silent, 1 a progress bar within each epoch, 2 one line per epoch), or ``"auto"``: 1 when
    stdout is a terminal, else 2. ``backup_dir``: where an interrupted run keeps its last finished
    epoch (None: a temporary folder, no resume)."""
    setup: Setup
    live_dir: Path
    verbose: int | str = "auto"
    backup_dir: Path | None = None


def train_model(family_name: str, recipe: Recipe, seed: int, train: tuple[np.ndarray, np.ndarray],
                val: tuple[np.ndarray, np.ndarray], live_dir: str | Path, verbose: int | str = "auto",
                strategy: str = "auto", backup_dir: str | Path | None = None, features=None
                ) -> tuple[keras.Model, TrainSummary]:
    """Train a family on (uint8 images (N, S, S, C), labels (N, 3)) splits: checks the splits,
    :func:`~agegender.training.setup.setup_training` (``features``: the features stage's
    ``FeatureCache`` for a ``features: cached`` recipe), then :func:`fit`."""
    if len(train[0]) == 0 or len(val[0]) == 0:
        raise ParamsError(f"train ({len(train[0])}) and val ({len(val[0])}) splits must both hold "
                          "images: add data or change the split fractions in params.yaml")
    if not keras_compat.is_tested():
        log.warning("Keras %s is outside the range agegender.training.keras_compat was tested on %s",
                    keras.__version__, keras_compat.TESTED_KERAS)
    setup = setup_training(family_name, recipe, seed, train, val, strategy, features)
    return fit(FitRequest(setup, Path(live_dir), verbose, Path(backup_dir) if backup_dir else None))


def fit(request: FitRequest) -> tuple[keras.Model, TrainSummary]:
    """Train ``request.setup`` through its phases; returns the model and its summary.

    Within a phase interrupted mid-way, early stopping starts its patience and best-epoch memory
    afresh, so a validated run may then pick another epoch. The backup folder is removed when the
    run finishes; the DVCLive logs are kept there while training, so a resumed run's curves are
    whole."""
    from dvclive import Live

    setup, model = request.setup, request.setup.model
    backup = resume.backup_folder(request.backup_dir, setup)
    early_stopping, callbacks = _callbacks(setup)
    best_value, best_weights = float("inf"), None
    with Live(str(backup / "live"), dvcyaml=None, save_dvc_exp=False, resume=True) as live:
        callbacks.append(_live_callback(live))
        clock = resume.Clock(backup)
        resumed, finished_phases = False, []
        for phase in setup.phases:
            phase.prepare()  # before a finished phase's weights are restored: saved in its layout
            folder = backup / phase.name
            folder.mkdir(parents=True, exist_ok=True)
            finished = resume.load_finished_phase(model, folder)
            if finished is not None:  # finished before an interruption: not trained again
                log.info("phase %s: finished before, restored from %s", phase.name, folder)
                resumed = True
            else:
                finished, resumed_here = _run_phase(phase, request, folder, clock, live, early_stopping, callbacks)
                resumed = resumed or resumed_here
            finished_phases.append(finished)
            # EarlyStopping restores the best epoch of this phase; keep the best over all phases
            if finished.best is not None and finished.best < best_value:
                best_value, best_weights = finished.best, model.get_weights()
        seconds = clock.seconds()
    if best_weights is not None:
        model.set_weights(best_weights)
    live_dir = Path(request.live_dir)
    resume.finish(backup, request.backup_dir, live_dir)
    return model, _summary(setup, live_dir, seconds, resumed, _train_tflop(finished_phases, setup.train_images))


def _callbacks(setup: Setup) -> tuple[keras.callbacks.EarlyStopping, list]:
    """Early stopping on val (when there is val) and the plateau schedule (when the recipe asks).
    With weight averaging (``ema``) the average is the model kept: early stopping still stops, but
    restores no raw best epoch over it."""
    recipe = setup.recipe
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=MONITOR, patience=recipe.early_stopping_patience, mode="min",
        restore_best_weights=not recipe.ema, verbose=1)
    callbacks = []
    if recipe.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=MONITOR, factor=recipe.reduce_lr.factor, patience=recipe.reduce_lr.patience,
            mode="min", verbose=1))
    if setup.val_data is not None:
        callbacks.append(early_stopping)
    return early_stopping, callbacks


def _run_phase(phase: Phase, request: FitRequest, folder: Path, clock: resume.Clock, live,
               early_stopping: keras.callbacks.EarlyStopping, callbacks: list) -> tuple[resume.FinishedPhase, bool]:
    """Fit one phase from its last finished epoch in ``folder`` (its start if none) to its end; save
    what it finished with (best val score, FLOPs per face, epochs run) and return it, with whether
    it resumed mid-way."""
    setup, fitted = request.setup, phase.model
    first = resume.resume_epoch(folder, phase.first_epoch)  # the data starts where fit will
    keras_compat.forget_restored_epoch(fitted)
    log.info("phase %s: epochs %d-%d of %d training %s", phase.name, first + 1, phase.end_epoch,
             setup.train_images, "faces' cached features" if phase.from_features else "images")
    with keras_compat.multi_worker_fit(fitted, setup.strategy):
        # shuffle=False: the dataset is shuffled already (Keras would warn otherwise)
        history = fitted.fit(phase.train_data(first), steps_per_epoch=setup.steps_per_epoch,
                             validation_data=phase.validation, initial_epoch=phase.first_epoch,
                             epochs=phase.end_epoch, verbose=keras_verbosity(request.verbose), shuffle=False,
                             callbacks=[resume.backup_callback(fitted, folder, clock), resume.ResumeLive(live),
                                        *phase.callbacks(), *callbacks])
    run = range(phase.first_epoch, first + len(history.epoch))  # epochs before a resume, and these
    finished = resume.FinishedPhase(early_stopping.best if setup.val_data is not None else None,
                                    phase.flops_per_face(run), len(run))
    resume.save_finished_phase(setup.model, folder, finished)
    clock.save()
    return finished, first > phase.first_epoch


def keras_verbosity(requested: int | str, stdout=None) -> int:
    """Keras' fit verbosity for ``requested``: a number as it is; ``"auto"``: 1 (a progress bar
    within each epoch) when ``stdout`` (default sys.stdout) is a terminal, else 2 (one line per
    epoch, for logs)."""
    if requested != "auto":
        return int(requested)
    stdout = sys.stdout if stdout is None else stdout
    return 1 if getattr(stdout, "isatty", lambda: False)() else 2


def _train_tflop(phases: list[resume.FinishedPhase], faces_per_epoch: int) -> float | None:
    """The run's training cost in TFLOP: per phase, FLOPs per trained face x faces x epochs run."""
    if any(p.flops_per_face is None or p.epochs is None for p in phases):
        return None
    return round(sum(p.flops_per_face * faces_per_epoch * p.epochs for p in phases) / 1e12, 6)


def _summary(setup: Setup, live_dir: Path, seconds: float, resumed: bool,
             train_tflop: float | None) -> TrainSummary:
    val_mae = read_live_metric(live_dir, "age_mae").get("val")
    epochs_run = len(read_live_metric(live_dir, "loss")["train"])  # every epoch, across a resume
    return TrainSummary(
        model=setup.family.name, epochs_run=epochs_run,
        best_val_age_mae=(None if setup.val_data is None or val_mae is None
                          else round(float(val_mae["age_mae"].min()), 4)),
        final_fit=setup.recipe.final_fit, train_seconds=round(seconds, 1),
        train_images=setup.train_images,
        train_images_per_second=round(setup.train_images * epochs_run / seconds, 1),
        parameters=int(setup.model.count_params()),
        precision=setup.precision, precision_setting=setup.recipe.precision,
        device=setup.device, isa=" ".join(setup.isa),
        strategy=hardware.strategy_name(setup.strategy), resumed=resumed, train_tflop=train_tflop)


def _live_callback(live):
    """DVCLive's Keras callback, but the Live run outlives one ``fit`` call (one per phase): the
    ``with Live(...)`` block in :func:`fit` ends it after the last phase."""
    from dvclive.keras import DVCLiveCallback

    class PhaseLiveCallback(DVCLiveCallback):
        def on_train_end(self, logs=None):
            pass

    return PhaseLiveCallback(live=live)
