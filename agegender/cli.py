"""What every command line of the project shares: ``-v`` / ``-q`` logging switches, a quiet
TensorFlow start and clean exits."""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from typing import Callable

from agegender.errors import UserError


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with ``-v/--verbose`` and ``-q/--quiet``."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    group = p.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", help="say more (debug messages)")
    group.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def setup_logging(args: argparse.Namespace) -> None:
    """Library messages go to stderr as ``module: message``; INFO unless -v (DEBUG) or -q (WARNING)."""
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(name)s: %(message)s", stream=sys.stderr, force=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if not args.verbose:
        quiet_tensorflow_start()


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


class _QuietStart(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``tensorflow`` (the first time anything does) with stderr caught in a file, lists its
    devices (where cuInit runs), then writes back every caught line that is not start noise."""

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
        sys.stderr.flush()
        saved = os.dup(2)
        gpus_found = True  # until shown otherwise: keep a cuInit error
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                self.loader.exec_module(module)
                gpus_found = bool(module.config.list_physical_devices("GPU"))
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                for line in caught.read().decode(errors="replace").splitlines(keepends=True):
                    if not start_noise(line, gpus_found):
                        sys.stderr.write(line)
                sys.stderr.flush()


def quiet_tensorflow_start() -> None:
    """Make TensorFlow's start quiet in this process (see :func:`start_noise`), without importing it:
    light commands never pay for TensorFlow. A no-op once TensorFlow is imported."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietStart) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietStart())


def run(name: str, main: Callable[[list[str] | None], int], argv: list[str] | None = None,
        error_status: int = 1) -> int:
    """Call ``main(argv)``; a :class:`UserError` ends it with ``name: error: message`` on stderr and
    ``error_status``. Other exceptions propagate with their traceback: they are bugs."""
    try:
        return main(argv)
    except UserError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return error_status
