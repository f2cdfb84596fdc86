"""What every command line of the project shares: ``-v`` / ``-q`` logging switches, a quiet
TensorFlow start (:mod:`agegender.quiet_start`) and clean exits."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

from agegender.errors import UserError
from agegender.quiet_start import quiet_tensorflow_start


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with ``-v/--verbose`` and ``-q/--quiet``."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    group = p.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", help="say more (debug messages)")
    group.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


class StderrHandler(logging.StreamHandler):
    """A stream handler that writes to ``sys.stderr`` as it is when a message comes, not as it was
    when the handler was made: a stage run in-process (tests, pytest's capture) swaps stderr and
    closes the old one, and a handler holding it would fail with "I/O operation on closed file"."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):  # StreamHandler.__init__ sets it; the property always reads sys.stderr
        pass


def setup_logging(args: argparse.Namespace) -> None:
    """Library messages go to stderr as ``module: message``; INFO unless -v (DEBUG) or -q (WARNING)."""
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[StderrHandler()], force=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    if not args.verbose:
        quiet_tensorflow_start()


def run(name: str, main: Callable[[list[str] | None], int], argv: list[str] | None = None,
        error_status: int = 1) -> int:
    """Call ``main(argv)``; a :class:`UserError` ends it with ``name: error: message`` on stderr and
    ``error_status``. Other exceptions propagate with their traceback: they are bugs."""
    try:
        return main(argv)
    except UserError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return error_status
