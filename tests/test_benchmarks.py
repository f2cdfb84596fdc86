"""The benchmark scripts run with the models params.yaml configures (no timing is asserted)."""
import importlib.util
import re
from pathlib import Path

import pytest

from agegender.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_speed_benchmark_prints_training_and_inference_rates(capsys):
    # The default model trains with a cosine schedule, which needs its steps per epoch: the
    # benchmark must compile it the way the train stage does.
    _load("pipeline_bench").speed(None, n_images=32, batch_size=16, precisions=["float32", "auto"])
    out = capsys.readouterr().out
    default = load_params(ROOT / "params.yaml").model
    assert re.search(r"^cpu: .+, \d+ cores; isa: .*; native bf16: (yes|no)$", out, re.M)
    assert re.search(r"^gpu: ", out, re.M)
    for precision in ("float32", "auto"):
        assert re.search(rf"model {default} \([\d,]+ parameters\), profile \w+, batch 16, "
                         rf"precision {precision} -> \w+, strategy one device \(1 replica\)\n", out)
    rates = [float(v) for v in re.findall(r"([\d.]+) (?:images/s|with flip)", out)]
    assert len(rates) == 6 and all(r > 0 for r in rates)
