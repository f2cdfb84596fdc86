"""The fit engine's contract (agegender.training.fit): a request in, the model and a typed summary out."""
import io
import json
import warnings

import numpy as np
import pytest

from agegender.params import Recipe
from agegender.training.fit import FitRequest, fit, keras_verbosity, train_model
from agegender.training.setup import setup_training
from agegender.training.summary import TrainSummary
from numerics import same_run

TINY = {"stem_filters": 4, "stage_filters": [4, 8, 8, 8], "stage_blocks": [1, 1, 1, 1]}


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _split(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 72, 72, 3), dtype=np.uint8)
    return images, np.stack([rng.integers(1, 90, n), rng.integers(0, 2, n), np.zeros(n)], 1).astype(np.int16)


def test_progress_bar_in_a_terminal_one_line_per_epoch_in_logs():
    assert keras_verbosity("auto", _Terminal()) == 1
    assert keras_verbosity("auto", io.StringIO()) == 2
    assert keras_verbosity(0, _Terminal()) == 0 and keras_verbosity(2, _Terminal()) == 2


def test_a_fit_returns_the_typed_summary_the_file_holds_and_warns_of_nothing(tmp_path):
    recipe = Recipe(epochs=2, batch_size=8, architecture=TINY, precision="float32",
                    lr_schedule="plateau", augment={"flip": True})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, summary = train_model("compact", recipe, 0, _split(16, 0), _split(8, 1),
                                     tmp_path / "live", verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)], [str(w.message) for w in caught]
    assert isinstance(summary, TrainSummary)
    assert (summary.model, summary.epochs_run, summary.train_images, summary.final_fit) == ("compact", 2, 16, False)
    assert summary.parameters == model.count_params() and summary.precision == "float32"
    assert summary.best_val_age_mae is not None and summary.resumed is False and summary.train_seconds > 0
    summary.write(tmp_path / "s.json")
    assert list(json.loads((tmp_path / "s.json").read_text())) == [
        "model", "epochs_run", "best_val_age_mae", "final_fit", "train_seconds", "train_images",
        "train_images_per_second", "parameters", "precision", "precision_setting", "device", "isa",
        "strategy", "resumed", "train_tflop"]  # train_summary.json's keys, in its order
    assert (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").is_file()


def test_fit_takes_a_request_built_from_a_setup(tmp_path):
    recipe = Recipe(epochs=1, batch_size=8, architecture=TINY, precision="float32", final_fit=True,
                    augment={"flip": False})
    setup = setup_training("compact", recipe, 0, _split(8, 0), _split(8, 1))
    model, summary = fit(FitRequest(setup, tmp_path / "live", verbose=0, backup_dir=tmp_path / "backup"))
    assert model is setup.model and summary.train_images == 16 and summary.best_val_age_mae is None
    assert not (tmp_path / "backup").exists()  # a finished run leaves no backup


def test_the_training_cost_is_the_counted_step_flops_per_face_times_faces_times_epochs(tmp_path):
    """cost.train_tflop: one training step's FLOPs per face of the model as trained, counted from
    its graph, x the faces of an epoch x the epochs run; summed over phases; the same on every CPU."""
    from agegender.training.flops import train_step_flops

    recipe = Recipe(epochs=2, batch_size=8, architecture=TINY, precision="float32", final_fit=True,
                    augment={"flip": True})
    setup = setup_training("compact", recipe, 0, _split(8, 0), _split(8, 1))
    per_face = train_step_flops(setup.model, 8).total / 8
    assert per_face > 1e6  # a real count: the tiny network's convolutions, forward and backward
    _, summary = fit(FitRequest(setup, tmp_path / "live", verbose=0))
    assert summary.train_tflop == pytest.approx(per_face * 16 * 2 / 1e12, abs=1e-6) and summary.epochs_run == 2
    assert summary.train_tflop > 1e-5  # not rounded away


def test_a_summary_written_before_the_cost_was_counted_still_reads(tmp_path):
    recipe = Recipe(epochs=1, batch_size=8, architecture=TINY, precision="float32", final_fit=True,
                    augment={"flip": False})
    _, summary = train_model("compact", recipe, 0, _split(8, 0), _split(8, 1), tmp_path / "live", verbose=0)
    old = summary.to_json()
    del old["train_tflop"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert TrainSummary.read(tmp_path / "old.json").train_tflop is None


def test_weight_averaging_keeps_the_average_of_the_trained_weights_deterministically(tmp_path):
    """``ema``: the weights kept are the moving average (Keras starts it at the weights after the
    first step; at momentum 0.999 it barely moves over the next 3 steps, where the raw weights move
    on), the same run twice gives the same weights, and a validation run keeps the average rather
    than restoring a raw best epoch."""
    base = dict(epochs=2, batch_size=8, architecture=TINY, precision="float32", augment={"flip": True},
                lr_schedule="plateau", learning_rate=1e-2)

    def trained(**settings):
        model, _ = train_model("compact", Recipe(**base, **settings), 0, _split(16, 0), _split(8, 1),
                               tmp_path / f"live{len(list(tmp_path.iterdir()))}", verbose=0)
        return [np.asarray(w) for w in model.trainable_weights]

    start = [np.asarray(w) for w in setup_training("compact", Recipe(**base), 0, _split(16, 0),
                                                     _split(8, 1)).model.trainable_weights]

    def moved(weights):
        return sum(float(np.abs(w - s).sum()) for w, s in zip(weights, start))

    raw, averaged, again = trained(), trained(ema=0.999), trained(ema=0.999)
    assert moved(raw) > 0 and moved(averaged) < 0.5 * moved(raw)
    assert all(same_run(a, b) for a, b in zip(averaged, again))


def test_progressive_resizing_trains_the_first_epochs_smaller_and_counts_each_epochs_cost(tmp_path):
    """progressive: epochs 1-2 train on faces resized to 32 px, epoch 3 at the profile's 72 px;
    the saved model keeps its 72 px input (and still refuses another size), the cost is each
    epoch's step counted at its size, and the same seed trains the same weights."""
    import keras

    from agegender.training import keras_compat
    from agegender.training.flops import train_step_flops
    from agegender.training.resizing import at_size, epoch_sizes
    from agegender.training.phases import compile_model

    recipe = Recipe(epochs=3, batch_size=8, architecture=TINY, precision="float32", final_fit=True,
                    augment={"flip": True, "translation": 0.06}, progressive=[{"size": 32, "epochs": 2}])
    assert epoch_sizes(recipe, 72) == [32, 32, 72]
    setup = setup_training("compact", recipe, 0, _split(8, 0), _split(8, 1))

    def counted(side):
        with keras_compat.any_input_size(setup.model):
            model = at_size(setup.model, side)
            compile_model(model, setup.family, recipe, setup.steps_per_epoch)
            return train_step_flops(model, 8).total / 8

    small, full = counted(32), counted(72)
    assert 0.1 < small / full < 0.35  # about (32 / 72)^2 = 0.2 of the convolutions' work
    model, summary = fit(FitRequest(setup, tmp_path / "live", verbose=0))
    assert summary.train_tflop == pytest.approx((2 * small + full) * 16 / 1e12, abs=1e-6)
    assert model.input_shape == (None, 72, 72, 3)
    with pytest.raises(ValueError, match="incompatible"):
        model(keras.ops.zeros((1, 32, 32, 3)))  # the size check is back after counting

    again, _ = train_model("compact", recipe, 0, _split(8, 0), _split(8, 1), tmp_path / "live2", verbose=0)
    plain, _ = train_model("compact", recipe.model_copy(update={"progressive": []}), 0, _split(8, 0),
                           _split(8, 1), tmp_path / "live3", verbose=0)
    faces = _split(4, 2)[0]
    out = [m.predict(faces, verbose=0)["age"] for m in (model, again, plain)]
    assert same_run(out[0], out[1]) and not same_run(out[0], out[2])


def test_a_seed_family_that_pools_globally_trains_progressively_too(tmp_path):
    """ranges10 (seed 003's plain CNN on 128 px gray faces) with its first epoch at 64 px: it
    trains, keeps its 128 px input and costs less than at full size throughout."""
    rng = np.random.default_rng(0)

    def split(n):
        labels = np.stack([rng.integers(1, 90, n), rng.integers(0, 2, n), np.zeros(n)], 1).astype(np.int16)
        return rng.integers(0, 256, (n, 128, 128, 1), dtype=np.uint8), labels

    train, val = split(8), split(4)
    recipe = Recipe(epochs=2, batch_size=8, precision="float32", final_fit=True, augment={"flip": True},
                    progressive=[{"size": 64, "epochs": 1}])
    model, summary = train_model("ranges10", recipe, 0, train, val, tmp_path / "a", verbose=0)
    _, full = train_model("ranges10", recipe.model_copy(update={"progressive": []}), 0, train, val,
                          tmp_path / "b", verbose=0)
    assert model.input_shape == (None, 128, 128, 1) and summary.epochs_run == 2
    assert 0.5 * full.train_tflop < summary.train_tflop < 0.75 * full.train_tflop  # (1/4 + 1) / 2 of it


def test_the_small_epochs_train_small_and_validate_at_the_full_size():
    """SizeSchedule: each epoch's training batches at its side, every validation at the input's
    own size (0: passed through), so early stopping compares epochs at the size the model predicts at."""
    import keras

    from agegender.training.resizing import resizable

    recipe = Recipe(epochs=2, batch_size=8, architecture=TINY, precision="float32", lr_schedule="plateau",
                    augment={"flip": False}, progressive=[{"size": 32, "epochs": 1}])
    setup = setup_training("compact", recipe, 0, _split(8, 0), _split(8, 1))
    seen = {"train": [], "test": []}

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen["train"].append(int(self.model.get_layer("resize").side.numpy()))

        def on_test_batch_begin(self, batch, logs=None):
            seen["test"].append(int(self.model.get_layer("resize").side.numpy()))

    phase = setup.phases[0]
    assert phase.model is setup.resized and phase.sizes == [32, 72]
    setup.resized.fit(phase.train_data(0, 2), steps_per_epoch=setup.steps_per_epoch, epochs=2,
                      validation_data=setup.val_data, verbose=0, callbacks=[*phase.callbacks(), Record()])
    assert seen["train"] == [32, 72] and seen["test"] == [0, 0]
    assert resizable(setup.model).get_layer("resize").side.numpy() == 0  # a new wrapper starts at 0
