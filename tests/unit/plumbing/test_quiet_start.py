"""TensorFlow starts quietly in every command line (agegender.commands.setup_logging), unless -v, and its
real errors still show."""
import argparse
import subprocess
import sys
import textwrap

import pytest

from agegender import commands
from agegender.quiet_start import start_noise
from locations import ROOT

CUINIT = ("E0000 00:00:1796157296.599638    5476 cuda_platform.cc:52] failed call to cuInit: "
          "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
REAL_ERROR = "E0000 00:00:1796157296.599638    5476 some_kernel.cc:12] could not open libfoo.so\n"
INFO = ("I0000 00:00:1796157294.930343    5476 cudart_stub.cc:31] Could not find cuda drivers on "
        "your machine, GPU will not be used.\n")


def _run(code: str, *, extra_path: str | None = None, verbose: bool = False) -> subprocess.CompletedProcess:
    """``code`` after the project's command-line set-up (commands.setup_logging), in a fresh process."""
    prelude = textwrap.dedent(f"""
        import argparse, sys
        sys.path[:0] = [p for p in ({extra_path!r}, {str(ROOT)!r}) if p]
        from agegender import commands
        commands.setup_logging(argparse.Namespace(verbose={verbose}, quiet=False))
        """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


def test_start_noise_is_only_info_warning_and_the_no_gpu_cuinit_line():
    assert start_noise(INFO, gpus_found=False)
    assert start_noise("WARNING: All log messages before absl::InitializeLog() is called are written "
                       "to STDERR\n", gpus_found=False)
    assert start_noise(CUINIT, gpus_found=False)
    assert not start_noise(CUINIT, gpus_found=True)  # with a GPU found, a cuInit failure is real
    assert not start_noise(REAL_ERROR, gpus_found=False)
    assert not start_noise("Traceback (most recent call last):\n", gpus_found=False)
    assert not start_noise("/x.py:3: UserWarning: something\n", gpus_found=False)


def test_only_start_noise_is_dropped_and_minus_v_keeps_it(tmp_path):
    """A stand-in ``tensorflow`` package that writes what a GPU-less start writes, plus a real error."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(textwrap.dedent(f"""
        import os
        os.write(2, {(INFO + CUINIT + REAL_ERROR).encode()!r})
        class config:
            @staticmethod
            def list_physical_devices(kind=None):
                return []
        """))
    quiet = _run("import tensorflow\nprint('imported')", extra_path=str(tmp_path))
    assert quiet.returncode == 0 and quiet.stdout.strip() == "imported", quiet.stderr
    assert quiet.stderr == REAL_ERROR
    loud = _run("import tensorflow", extra_path=str(tmp_path), verbose=True)
    assert loud.stderr == INFO + CUINIT + REAL_ERROR


def test_real_tensorflow_on_this_machine_starts_without_the_cuinit_line():
    code = """
        import tensorflow as tf
        try:
            tf.io.read_file("/nonexistent/agegender-test")
        except tf.errors.NotFoundError as exc:
            print(type(exc).__name__, file=sys.stderr)
        """
    loud = _run(code, verbose=True)
    if "cuInit" not in loud.stderr:
        pytest.skip("TensorFlow here does not report a failed cuInit (a GPU, or no CUDA support)")
    quiet = _run(code)
    assert quiet.returncode == 0, quiet.stderr
    assert "cuInit" not in quiet.stderr and "I0000" not in quiet.stderr
    assert "NotFoundError" in quiet.stderr  # TensorFlow's errors after the start still show


def test_no_stage_imports_tensorflow_before_its_logging_is_set_up():
    """The quiet start is installed by commands.setup_logging in main(): TensorFlow must come later."""
    stages = sorted(p.stem for p in (ROOT / "stages").glob("*.py") if p.stem != "__init__")
    code = f"""
        import importlib, sys
        sys.path.insert(0, {str(ROOT)!r})
        for name in {stages!r} + ["agegender.prediction.cli"]:
            importlib.import_module(name if "." in name else "stages." + name)
            assert "tensorflow" not in sys.modules, name + " imports TensorFlow when imported"
        """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_fatal_error_that_aborts_the_start_still_shows(tmp_path):
    """TensorFlow's F-lines (e.g. a CPU without the instructions the wheel was built for) come just
    before it aborts the process: they must reach stderr although the process dies mid-import."""
    fatal = "F0000 00:00:1796157296.599638    5476 cpu_feature_guard.cc:1] needs AVX-1024\n"
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(textwrap.dedent(f"""
        import os
        os.write(2, {(INFO + CUINIT + fatal).encode()!r})
        os.abort()
        """))
    died = _run("import tensorflow", extra_path=str(tmp_path))
    assert died.returncode != 0
    assert fatal in died.stderr and "I0000" not in died.stderr
    assert "cuInit" in died.stderr  # no answer about the GPUs: the cuInit error is kept, to be safe


def test_log_messages_follow_stderr_after_it_is_swapped_and_closed(monkeypatch):
    """A stage run in-process (tests, pytest's capture) swaps stderr and closes the old stream:
    the handler setup_logging installs writes to the stderr of the moment, with no "Logging
    error" about a closed file."""
    import io
    import logging

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    commands.setup_logging(argparse.Namespace(verbose=True, quiet=False))
    try:
        logging.getLogger("agegender.test").info("one")
        first.close()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("agegender.test").info("two")
        assert second.getvalue() == "agegender.test: two\n"
    finally:
        logging.basicConfig(force=True, level=logging.WARNING, handlers=[logging.NullHandler()])
