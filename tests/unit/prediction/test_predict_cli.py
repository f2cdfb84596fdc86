"""agegender-predict: nothing lost, nothing overwritten (issue 21), foreign model files, a run
killed and resumed, the age interval in the records."""
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from agegender.prediction import output as O
from agegender.prediction import predictor as P
from agegender.prediction.cli import console as predict_main
from agegender.serving.saved import ModelInfo, save_model
from locations import ROOT
from predicting import face_image, save_image, write_csv


# --- nothing lost, nothing overwritten (issue 21) ------------------------------------------------

def _crops(folder, n, distinct=6):
    """``n`` face crops named 0000.jpg... (``distinct`` different pictures, repeated)."""
    folder.mkdir(parents=True, exist_ok=True)
    encoded = []
    for i in range(distinct):
        buf = io.BytesIO()
        face_image(i, size=64).save(buf, "JPEG", quality=90)
        encoded.append(buf.getvalue())
    for i in range(n):
        (folder / f"{i:04d}.jpg").write_bytes(encoded[i % distinct])
    return folder


def _cli(model_dir, *args):
    return predict_main([*map(str, args), "--model", str(model_dir / "model.keras"), "--no-detect",
                         "--workers", "2"])


def _error_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("predict: error: "), err
    return err[0]


def test_an_output_that_is_an_input_or_a_folder_is_refused_before_predicting(model_dir, tmp_path,
                                                                             capsys, monkeypatch):
    d = _crops(tmp_path / "d", 2)
    photo = (d / "0000.jpg").read_bytes()
    monkeypatch.setattr(P.Predictor, "__init__", lambda *a, **k: pytest.fail("model loaded"))
    link = tmp_path / "link.csv"
    link.symlink_to(d / "0001.jpg")
    hard = tmp_path / "hard.csv"
    os.link(d / "0000.jpg", hard)  # another path, the same file on disk
    for output, problem in [(d / "0000.jpg", "is one of the inputs"),  # via the folder
                            (link, "is one of the inputs"),  # a link to an input
                            (hard, "is one of the inputs"),  # a hard link to an input
                            (d, "is a folder"), (tmp_path, "is a folder"),
                            (d / "new.png", "named like an image"),
                            (d / "0001.jpg" / "x.csv", "cannot write there"),
                            ("/proc/predictions.csv", "cannot write there")]:
        assert _cli(model_dir, d, "--output", output) == 2, output
        assert problem in _error_line(capsys), output
    assert _cli(model_dir, d / "0000.jpg", "--output", d / "0000.jpg") == 2
    assert "is one of the inputs" in _error_line(capsys)
    assert (d / "0000.jpg").read_bytes() == photo and sorted(p.name for p in d.iterdir()) == [
        "0000.jpg", "0001.jpg"]


@pytest.mark.parametrize("option, value", [("--batch-size", "0"), ("--workers", "-1"),
                                           ("--max-file-mb", "0"), ("--detect-max-side", "-5"),
                                           ("--batch-size", "many")])
def test_bad_option_values_are_argparse_errors(option, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        predict_main(["x.jpg", option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {option}" in err and "Traceback" not in err


def _foreign_models(model_dir, folder):
    """.keras files this project must refuse, each as it would reach a user."""
    import zipfile

    import keras


    info = ModelInfo.for_family("compact", "float32")
    x = keras.Input((72, 72, 3))
    y = keras.layers.Lambda(lambda t: t * 2)(x)
    lam = keras.Model(x, {"age": keras.layers.Dense(1, name="age")(keras.layers.Flatten()(y)),
                          "gender": keras.layers.Dense(1, name="gender")(keras.layers.Flatten()(y))})
    save_model(lam, folder / "lambda.keras", info)
    with zipfile.ZipFile(model_dir / "model.keras") as src:
        entries = {n: src.read(n) for n in src.namelist()}
    config = json.loads(entries["config.json"])
    config["config"]["layers"][1].update(module="os", class_name="system", registered_name="os>system")
    for name, changed in [("injected.keras", {"config.json": json.dumps(config).encode()}),
                          ("no_config.keras", {"config.json": None})]:
        with zipfile.ZipFile(folder / name, "w") as dst:
            for entry, data in {**entries, **changed}.items():
                if data is not None:
                    dst.writestr(entry, data)
    (folder / "random.keras").write_bytes(np.random.default_rng(0).bytes(5000))
    return ["lambda.keras", "injected.keras", "no_config.keras", "random.keras"]


def test_every_foreign_or_corrupt_model_file_is_one_line_and_exit_2(model_dir, tmp_path, capsys):
    crop = _crops(tmp_path / "in", 1) / "0000.jpg"
    for name in _foreign_models(model_dir, tmp_path):
        code = predict_main([str(crop), "--model", str(tmp_path / name), "--no-detect"])
        assert code == 2, name
        line = _error_line(capsys)
        assert name in line and len(line) < 400, line


def test_every_format_names_its_model_and_resumes_after_a_torn_line(model_dir, tmp_path, capsys):
    import csv
    import hashlib

    d = _crops(tmp_path / "d", 7)
    sha = hashlib.sha256((model_dir / "model.keras").read_bytes()).hexdigest()
    full = {}
    for fmt in ("csv", "jsonl", "json"):
        out = tmp_path / f"all.{fmt}"
        assert _cli(model_dir, d, "--format", fmt, "--output", out) == 0
        text = out.read_text()
        recs = (list(csv.DictReader(io.StringIO(text))) if fmt == "csv" else json.loads(text)
                if fmt == "json" else [json.loads(line) for line in text.splitlines()])
        assert [r["file"] for r in recs] == [str(d / f"{i:04d}.jpg") for i in range(7)]
        assert {(r["model_family"], r["model_sha256"]) for r in recs} == {("compact", sha)}
        full[fmt] = text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the JSON temp is gone
    # the JSON list, written through a temporary file, has the mode a plain open gives (umask)
    mode = (tmp_path / "all.csv").stat().st_mode & 0o777
    assert (tmp_path / "all.json").stat().st_mode & 0o777 == mode
    capsys.readouterr()

    # a run stopped after three files, while writing the fourth's record (a torn line)
    lines = full["csv"].splitlines(keepends=True)
    part = tmp_path / "part.csv"
    part.write_text("".join(lines[:4]) + lines[4][:20])
    assert _cli(model_dir, d, "--output", part, "--resume") == 0
    assert "--resume: 2 files already in" in capsys.readouterr().err  # the last one is redone
    assert part.read_text() == full["csv"]
    assert part.stat().st_mode & 0o777 == mode  # the rewrite keeps the file's mode
    jl = full["jsonl"].splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_text("".join(jl[:5]))
    assert _cli(model_dir, d, "--format", "jsonl", "--output", part, "--resume") == 0
    assert part.read_text() == full["jsonl"]
    part = tmp_path / "part.json"
    part.write_text(json.dumps(json.loads(full["json"])[:3], indent=2) + "\n")
    assert _cli(model_dir, d, "--format", "json", "--output", part, "--resume") == 0
    assert part.read_text() == full["json"]
    capsys.readouterr()

    other = tmp_path / "other.keras"  # another model's output is not resumed into
    other.write_bytes((model_dir / "model.keras").read_bytes() + b"\0")
    code = predict_main([str(d), "--model", str(other), "--no-detect", "--output",
                         str(tmp_path / "all.csv"), "--resume"])
    assert code == 2 and "holds records of another model" in _error_line(capsys)


def test_a_json_list_is_written_whole_at_the_end(tmp_path):
    out = tmp_path / "out.json"
    out.write_text("[]\n")  # an earlier output stays whole until the new one replaces it
    writer = O.Writer(out, "json", O.ModelStamp("compact", "ab"))
    writer.write([P._record("a.jpg", error="x")])
    assert out.read_text() == "[]\n"
    writer.close()
    assert json.loads(out.read_text()) == [{**P._record("a.jpg", error="x"), "model_family": "compact",
                                            "model_sha256": "ab"}]


def test_special_and_oversized_files_are_per_file_errors(predictor, tmp_path):
    import socket
    import threading

    d = _crops(tmp_path / "d", 2)
    os.mkfifo(tmp_path / "pipe.jpg")
    os.mkfifo(d / "0000b.jpg")  # also found by the folder walk
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.jpg"))
    (tmp_path / "big.jpg").write_bytes(b"\xff" * (3 << 20))
    done = []
    worker = threading.Thread(target=lambda: done.append(P.Predictor(
        predictor.model, info=predictor.info, workers=2, max_file_mb=2).predict(
        [tmp_path / "pipe.jpg", "/dev/zero", tmp_path / "sock.jpg", tmp_path / "big.jpg", d],
        detect=False)), daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "a FIFO or device hung the predictor"
    by_file = {os.path.basename(r["file"]): r["error"] for r in done[0]}
    assert "not a regular file (a FIFO)" in by_file["pipe.jpg"]
    assert "not a regular file (a character device)" in by_file["zero"]
    assert "not a regular file (a socket)" in by_file["sock.jpg"]
    assert "file too large (3.0 MB, above the 2 MB cap" in by_file["big.jpg"]
    assert "a FIFO" in by_file["0000b.jpg"]
    assert by_file["0000.jpg"] is None and by_file["0001.jpg"] is None
    sock.close()


def test_decompression_bomb_warnings_and_errors_name_the_file(predictor, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)
    save_image(face_image(0, size=120), tmp_path / "warned.png")  # 1.44x the limit: Pillow warns
    save_image(face_image(1, size=150), tmp_path / "refused.png")  # above 2x: Pillow refuses
    with caplog.at_level("WARNING", logger="predict"):
        records = predictor.predict([tmp_path / "warned.png", tmp_path / "refused.png"], detect=False)
    assert records[0]["error"] is None
    assert f"{tmp_path / 'warned.png'}: 120 x 120 pixels, above Pillow's decompression-bomb" in caplog.text
    assert records[1]["file"].endswith("refused.png") and "decompression bomb" in records[1]["error"]


def test_a_progress_bar_counts_files_on_stderr(model_dir, tmp_path, capsys):
    d = _crops(tmp_path / "d", 5)
    assert _cli(model_dir, d, "--output", tmp_path / "o.csv", "--progress", "on") == 0
    assert "5/5" in capsys.readouterr().err


def test_arguments_and_the_model_file_are_checked_before_tensorflow_loads(tmp_path):
    import subprocess
    import sys

    script = ("import sys\nfrom agegender.prediction.cli import console\n"
              "rc = console(sys.argv[1:])\nprint('tensorflow' in sys.modules, rc)")
    for args in (["x.jpg", "--model", str(tmp_path / "none.keras")],
                 ["x.jpg", "--model", str(tmp_path / "none.keras"), "--output", str(tmp_path)]):
        run = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                             cwd=str(ROOT), timeout=120)
        # exit 2 with TensorFlow never imported: what made it fast (no wall-clock bound here, which
        # would fail on a slower CPU than this one; benchmarks measure speed, tests behaviour)
        assert run.stdout.split() == ["False", "2"], run.stderr


@pytest.mark.parametrize("sig", ["SIGTERM", pytest.param("SIGKILL", marks=pytest.mark.slow)])
def test_a_run_killed_midway_keeps_every_record_made_and_resumes(model_dir, tmp_path, sig):
    import csv
    import signal
    import subprocess
    import sys
    import time

    n = 1500
    d = _crops(tmp_path / "d", n)
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "stages.predict", str(d), "--model", str(model_dir / "model.keras"),
           "--no-detect", "--no-tta", "--workers", "1", "--output", str(out)]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None and (
            not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be stopped: use more images"
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert 0 < len(rows) < n
    assert [r["file"] for r in rows] == [str(d / f"{i:04d}.jpg") for i in range(len(rows))]
    assert all(r["age"] and r["model_sha256"] for r in rows)  # complete records only
    if sig == "SIGTERM":
        assert proc.returncode == 130 and f"interrupted after {len(rows)} files" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    rerun = subprocess.run(cmd + ["--resume", "-q"], cwd=str(ROOT), capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["file"] for r in rows] == [str(d / f"{i:04d}.jpg") for i in range(n)]


def test_a_stop_during_a_batch_waits_for_the_batch_to_be_written_and_counted():
    """Ctrl-C / SIGTERM inside the write of a batch: the batch is finished, then the run stops
    (the killed-run test above can hit the middle of a batch's write, when the file first grows)."""
    import os
    import signal

    from agegender.prediction.cli import _Stop

    stop, done = _Stop(), []
    previous = signal.signal(signal.SIGTERM, stop.handle)
    try:
        with pytest.raises(KeyboardInterrupt):
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside the block
                done.append("written")
                done.append("counted")
        assert done == ["written", "counted"]
        with pytest.raises(KeyboardInterrupt):  # outside a batch: at once
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("never")
        assert "never" not in done
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_records_carry_the_age_interval_and_the_models_gender_temperature(model_dir):
    """Every record holds the 80 % age interval (whole years) beside the age; a model saved with a
    temperature states a softer confidence of the same gender, one without states the network's."""
    from dataclasses import replace

    from agegender.serving.calibration import GenderCalibration, apply_temperature

    faces = [face_image(i) for i in range(4)]
    plain = P.Predictor(model_dir / "model.keras", tta=False)
    assert plain.info.gender_calibration is None
    soft = P.Predictor(plain.model, info=replace(plain.info, gender_calibration=GenderCalibration(3.0, 500, "val")),
                       tta=False)
    for a, b in zip(plain.predict(faces, detect=False), soft.predict(faces, detect=False)):
        assert isinstance(a["age_low"], int) and isinstance(a["age_high"], int)
        assert a["age_low"] <= a["age_high"] and (a["age_low"], a["age_high"]) == (b["age_low"], b["age_high"])
        assert a["gender"] == b["gender"] and 0.5 <= b["gender_probability"] <= a["gender_probability"]
        # the confidence of the predicted gender is sigmoid(logit / T) of the network's
        assert b["gender_probability"] == pytest.approx(apply_temperature(a["gender_probability"], 3.0), abs=2e-4)
    buffer = io.StringIO()
    write_csv(plain.predict(faces[:1], detect=False), buffer)
    header, row = buffer.getvalue().splitlines()
    assert header.split(",")[header.split(",").index("age"):][:3] == ["age", "age_low", "age_high"]
