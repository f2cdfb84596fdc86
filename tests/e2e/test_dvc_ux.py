"""DVC as a user meets it: the README's review view of `dvc exp show` fits a 120-column terminal,
plain runs say nothing about the optional pipelines (kfold/, external/) that never ran, the plots
page needs no network, and what `dvc plots show` writes is git-ignored."""
import configparser
import fcntl
import json
import os
import pty
import re
import shlex
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import yaml

from dvc_project import DVC, GIT, ROOT, assert_quiet
from dvc_project import env as _env
from dvc_project import run as _run

HEADLINE = {"age.mae", "age.cs5", "gender.accuracy", "cost.total_tflop"}


def review_command() -> list[str]:
    """The `dvc exp show` review command of README.md ("Compare experiments"), as argv."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Compare experiments"):]
    block = section[section.index("```bash") + 7:section.index("```", section.index("```bash") + 7)]
    command = re.search(r"^dvc exp show .*?(?<!\\)$", block.replace("\\\n", " "), re.M).group(0)
    return shlex.split(command)


def _flat(tree: dict, prefix: str = "") -> list[str]:
    names = []
    for key, value in tree.items():
        names += _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
    return names


def _option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def _default_metrics(tmp_path: Path) -> dict:
    """The metrics file the evaluate stage writes for the default family, made here (the saved
    compact fixture scored on synthetic test faces), not read from the workspace: a user's last
    experiment (another family's bins.* metrics, say) must not decide whether the suite passes."""
    import numpy as np
    import pandas as pd

    from agegender.training.summary import TrainSummary
    from stages import evaluate

    data, rng = tmp_path / "data", np.random.default_rng(0)
    data.mkdir()
    np.save(data / "test_images.npy", rng.integers(0, 256, (40, 72, 72, 3), dtype=np.uint8))
    labels = pd.DataFrame({"file": [f"{i}.jpg" for i in range(40)], "age": rng.integers(1, 90, 40),
                           "gender": np.arange(40) % 2, "race": np.arange(40) % 5, "split": "test"})
    np.save(data / "test_labels.npy", labels[["age", "gender", "race"]].to_numpy(np.int16))
    labels.to_csv(tmp_path / "labels.csv", index=False)
    TrainSummary("compact", 1, None, True, 1.0, 40, 40.0, 1, "float32", "auto", "CPU", "", "one device",
                 False, 0.03).write(tmp_path / "summary.json")
    out = {name: tmp_path / f"{name}.out" for name in ("metrics", "predictions", "breakdown", "csv")}
    assert evaluate.main(["--model", str(ROOT / "tests/helpers/fixtures/saved_compact.keras"), "--data-dir",
                          str(data), "--labels", str(tmp_path / "labels.csv"), "--train-summary",
                          str(tmp_path / "summary.json"), "--metrics-out", str(out["metrics"]),
                          "--predictions-out", str(out["predictions"]), "--breakdown-out",
                          str(out["breakdown"]), "--breakdown-csv-out", str(out["csv"]), "-q"]) == 0
    return json.loads(out["metrics"].read_text())


def test_review_view_keeps_the_headline_metrics_and_every_param(tmp_path):
    """Applied as DVC applies them (re.match of the joined regexes on each column name) to the
    columns of a run of the default (a metrics file the evaluate stage writes here, params.yaml,
    dvc.yaml's dependencies): --keep protects exactly the headline metrics, --drop removes every
    other metric but the cost.parameters / test_images that only-changed shows when they differ,
    every dependency and Created, and never a param (--only-changed decides those)."""
    argv = review_command()
    assert argv[:3] == ["dvc", "exp", "show"] and "--only-changed" in argv
    keep = re.compile("|".join(_option(argv, "--keep")))
    drop = re.compile("|".join(_option(argv, "--drop")))
    metrics = _flat(_default_metrics(tmp_path))
    params = _flat(yaml.safe_load((ROOT / "params.yaml").read_text()))
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    paths = yaml.safe_load((ROOT / "params.yaml").read_text())["paths"]
    deps = {re.sub(r"\$\{paths\.(\w+)\}", lambda m: paths[m.group(1)], d)
            for stage in stages.values() for d in stage["deps"] if not d.startswith("${data.")}
    deps |= {"data/raw/UTKFace.tar.gz", "data/extra"}
    assert {m for m in metrics if keep.match(m)} == HEADLINE
    shown = {m for m in metrics if keep.match(m) or not drop.match(m)}
    assert shown == HEADLINE | {"cost.parameters", "test_images"}
    assert any(m.startswith("fairness.") for m in metrics)  # the gaps are metrics, left out here
    assert not [p for p in params if drop.match(p) or keep.match(p)]
    assert all(drop.match(d) for d in deps), [d for d in deps if not drop.match(d)]
    assert drop.match("Created") and not drop.match("Experiment")


def test_optional_pipelines_declare_nothing_a_plain_run_misses():
    """No metrics declared by kfold/, external/ or export/ (missing until they run: a dashed row and
    "DVC failed to load some metrics") and no cached output (no hash until they run: `dvc
    checkout` fails and every `dvc exp run` warns); the main pipeline declares only its own."""
    for pipeline in ("kfold/dvc.yaml", "external/dvc.yaml", "export/dvc.yaml"):
        spec = yaml.safe_load((ROOT / pipeline).read_text())
        assert "metrics" not in spec and "plots" not in spec, pipeline
        for name, stage in spec["stages"].items():
            for out in stage.get("outs", []) + stage.get("metrics", []):
                assert isinstance(out, dict) and next(iter(out.values())).get("cache") is False, \
                    f"{pipeline}:{name} caches {out}"
    main = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    outs = {next(iter(o)) if isinstance(o, dict) else o
            for stage in main["stages"].values() for o in stage["outs"]}
    assert set(main["metrics"]) <= outs


def _template() -> Path:
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    return ROOT / ".dvc" / config['plots']['html_template']


def test_the_cache_links_outputs_and_the_config_says_why():
    """.dvc/config: cache.type links the workspace's outputs to the cache (one copy on disk), hardlink
    first, copy last; the comment saying why is still there (`dvc config` and `dvc remote add`
    rewrite the file without its comments) and docs/scaling.md has the section it points to."""
    text = (ROOT / ".dvc" / "config").read_text()
    config = configparser.ConfigParser()
    config.read_string(text)
    assert config["cache"]["type"].strip('"').split(",") == ["hardlink", "symlink", "copy"]
    assert "One copy on disk" in text and "treeverse/dvc#10549" in text
    assert "\n## One copy on disk\n" in (ROOT / "docs" / "scaling.md").read_text()


def test_the_plots_page_loads_nothing_from_the_network(tmp_path):
    """DVC fills the committed template (plots.html_template) and the page it writes has vega,
    vega-lite and vega-embed inline, at the versions docs/offline_plots.py pins, licences beside
    them, and no <script src=...>: DVC's CDN tags ({scripts}) are not in the template."""
    from dvc_render import render_html
    from dvc_render.vega import VegaRenderer

    template = _template()
    text = template.read_text(encoding="utf-8")
    assert "{plot_divs}" in text and "{scripts}" not in text
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from offline_plots import PACKAGES
    finally:
        sys.path.remove(str(ROOT / "docs"))
    for name, (version, _, integrity) in PACKAGES.items():
        assert f"<!-- {name} {version} (" in text and integrity in text, name
        assert "Redistribution and use" in (template.parent / f"{name}.LICENSE").read_text()
    for global_name in ("vega", "vegaLite", "vegaEmbed"):  # each UMD build defines its global
        assert re.search(rf"\)\.{global_name}=", text), global_name
    points = [{"step": 0, "loss": 1.0, "rev": "workspace", "filename": "loss.tsv"}]
    out = tmp_path / "dvc_plots" / "index.html"
    render_html([VegaRenderer(points, "loss.tsv", x="step", y="loss")], out, str(template))
    page = out.read_text(encoding="utf-8")
    assert "vegaEmbed('#loss_tsv'" in page
    assert not re.search(r"<script[^>]*\ssrc=", page) and "cdn." not in page


def test_dvc_plots_output_is_git_ignored():
    """`dvc plots show` writes dvc_plots/ in the folder it runs from; faces_grid.png is in it."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("dvc_plots/static/reports_figures_faces_grid.png", "docs/dvc_plots/index.html"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0, path


def _in_terminal(cmd: list[str], cwd, columns: int = 120) -> str:
    """Output of ``cmd`` run with a pseudo-terminal of ``columns`` columns as stdout/stderr (as a
    user sees it: rich draws its table for that width), ANSI escapes removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**_env(), "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm"}
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    os.close(master)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "")


@pytest.mark.slow
def test_plain_runs_are_quiet_and_the_review_view_fits_120_columns(trained_project, trained_copy):
    """On a project where kfold/ and external/ never ran: repro (the shared run of conftest.py's
    trained_project), metrics show, checkout and an experiment say nothing about them and exit 0;
    the README's review command in a 120-column terminal shows the headline metrics and the changed
    param with no cell cut (`…`). (Checkout after a k-fold run: test_experiments.py.)"""
    project = trained_copy
    assert_quiet(trained_project.repro_output)
    _run([*GIT, "add", "-A"], project)
    _run([*GIT, "commit", "-qm", "run"], project)
    shown = _run([*DVC, "metrics", "show"], project)
    assert_quiet(shown)
    assert "reports/metrics.json" in shown
    assert_quiet(_run([*DVC, "checkout"], project))
    assert_quiet(_run([*DVC, "exp", "run", "-S", "models.compact.learning_rate=0.004"], project))

    table = _in_terminal([*DVC, *review_command()[1:], "--no-pager"], project)
    lines = [line.rstrip() for line in table.splitlines() if line.strip()]
    assert "…" not in table and max(map(len, lines)) <= 120, table
    header = next(line for line in lines if "Experiment" in line).split()
    assert set(header) == {"Experiment"} | HEADLINE | {"models.compact.learning_rate"}, table
    rows = [line for line in lines if "0.004" in line or "0.002" in line]
    assert len(rows) >= 2, table  # the experiment (and workspace) and its baseline
    # the fairness gaps are still DVC metrics of every experiment
    exps = json.loads(_run([*DVC, "exp", "show", "--json"], project))
    metrics = exps[0]["data"]["metrics"]["reports/metrics.json"]["data"]
    assert metrics["fairness"]["race"]["mae_gap"] >= 0


def test_the_trained_model_is_registered_as_a_dvc_artifact():
    """`artifacts:` names the train stage's model file (params.yaml paths.model: DVC interpolates
    no params there, so the two are kept equal here), as DVC reads it."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    code = ("import json; from dvc.repo import Repo; "  # a process of its own: DVC sets up logging
            "print(json.dumps({k: [a.path, a.type] for k, a in Repo('.').artifacts.read()['dvc.yaml'].items()}))")
    read = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(read.stdout) == {"age-gender": [params["paths"]["model"], "model"]}
    train = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["train"]
    assert "${paths.model}" in train["outs"]
