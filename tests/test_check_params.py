"""The first stage, check_params: a valid params.yaml and raw data give the same few bytes every
time (so no stage downstream re-runs); a bad setting or missing data give one line and exit 1."""
import yaml

from agegender import cli
from stages import check_params


def _params(tmp_path, edit=None, source=None):
    raw = yaml.safe_load(open("params.yaml"))
    raw["data"]["source"] = str(source or tmp_path)  # a folder: exists
    if edit:
        edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_valid_params_file_gives_the_same_output_whatever_it_holds(tmp_path):
    outputs = []
    for epochs in (1, 2):
        path = _params(tmp_path, lambda p: p["models"]["compact"].update(epochs=epochs))
        out = tmp_path / f"ok{epochs}"
        assert cli.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == check_params.CHECKED.encode()


def test_a_typo_is_one_line_naming_the_key(tmp_path, capsys):
    path = _params(tmp_path, lambda p: p["models"]["compact"]["architecture"].update(wieghts=None))
    out = tmp_path / "ok"
    assert cli.run("check_params", check_params.main, ["--params", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "models.compact.architecture.wieghts: unknown key" in err
    assert not out.exists()


def test_missing_raw_data_is_the_readmes_message(tmp_path, capsys):
    path = _params(tmp_path, source=tmp_path / "data" / "raw" / "UTKFace.tar.gz")
    assert cli.run("check_params", check_params.main, ["--params", str(path), "--out", str(tmp_path / "ok")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("check_params: error: raw data not found at ") and len(err.splitlines()) == 1
    assert "see README 'Getting the data'" in err
