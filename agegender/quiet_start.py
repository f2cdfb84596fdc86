"""TensorFlow's start without its noise: an import hook that, the first time anything imports
``tensorflow``, sends its start-up lines through a filter in a child process, dropping the known
notices and passing every other line on. Installed by :func:`agegender.commands.setup_logging`
unless ``-v``."""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys

# TensorFlow's start (import, then finding devices) logs before its log level applies (absl's "All
# log messages before absl::InitializeLog()"): oneDNN and CUDA notices, and on a machine without a
# GPU an ERROR line "failed call to cuInit" that only says there is no GPU. Only these are dropped;
# any other line of the start, and everything TensorFlow logs later, still shows.
_START_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                          r"|[IW]\d{4} [\d:.]+ +\d+ \S+\] )")
_NO_GPU = re.compile(r"^E\d{4} .*\] failed call to cuInit")


def start_noise(line: str, gpus_found: bool) -> bool:
    """Whether a line TensorFlow wrote to stderr while starting is noise: an INFO / WARNING log
    line (what ``TF_CPP_MIN_LOG_LEVEL=2`` means to hide), or the cuInit error when no GPU was found."""
    return bool(_START_NOISE.match(line)) or (not gpus_found and bool(_NO_GPU.match(line)))


# The last line the parent writes into the filter's pipe, saying whether TensorFlow found a GPU.
_GPUS_LINE = "\x00agegender: gpus found: "


def filter_start(source, sink) -> None:
    """Copy TensorFlow's start-up lines from ``source`` to ``sink`` (binary streams) as they come,
    less the start noise. A cuInit error is held until the parent's closing line says whether a GPU
    was found; without that line (the parent died while TensorFlow started) it is shown too."""
    held, gpus_found = [], None
    for raw in source:
        line = raw.decode(errors="replace")
        if line.startswith(_GPUS_LINE):
            gpus_found = line[len(_GPUS_LINE):].strip() == "1"
        elif start_noise(line, gpus_found=True):  # noise whatever the devices
            continue
        elif start_noise(line, gpus_found=False):  # noise only without a GPU: wait for the answer
            held.append(raw)
        else:
            sink.write(raw)
            sink.flush()
    if gpus_found is not False:
        sink.writelines(held)
        sink.flush()


class _QuietStart(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``tensorflow`` (the first time anything does) and lists its devices (where cuInit
    runs) with stderr sent through :func:`filter_start` in a child process: lines that are not start
    noise pass on as they come, and survive this process if TensorFlow aborts it (a fatal error,
    e.g. a CPU without the instructions the wheel needs)."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once, and the real finder from here on
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        self.loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        import subprocess

        sys.stderr.flush()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        code = (f"import sys; sys.path.insert(0, {root!r}); from agegender.quiet_start import filter_start; "
                "filter_start(sys.stdin.buffer, sys.stdout.buffer)")
        child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=2)
        saved = os.dup(2)
        gpus_found = None
        os.dup2(child.stdin.fileno(), 2)
        try:
            self.loader.exec_module(module)
            gpus_found = bool(module.config.list_physical_devices("GPU"))
        finally:
            sys.stderr.flush()
            if gpus_found is not None:
                os.write(2, f"{_GPUS_LINE}{int(gpus_found)}\n".encode())
            os.dup2(saved, 2)
            os.close(saved)
            child.stdin.close()
            child.wait()  # every caught line written before this process writes on


def quiet_tensorflow_start() -> None:
    """Make TensorFlow's start quiet in this process (see :func:`start_noise`), without importing it:
    light commands never pay for TensorFlow. A no-op once TensorFlow is imported."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietStart) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietStart())
