"""The predictor's command line: ``agegender-predict PATH...`` (also ``python -m stages.predict``).

Everything that can be checked without TensorFlow is checked first, each mistake one line: the
options (argparse), the model file (present, this project's, readable information), the inputs
and the output (:func:`agegender.prediction.output.check_output`). Only then is the detector built
and the model loaded (seconds: TensorFlow), and records are written batch by batch.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import warnings
from pathlib import Path

from PIL import Image

from agegender import commands
from agegender.faces.registry import DETECTORS, make_detector
from agegender.prediction.annotate import Annotator, check_annotate
from agegender.prediction.inputs import MAX_FILE_MB, expand
from agegender.prediction.output import FORMATS, ModelStamp, Writer, check_output, resume
from agegender.prediction.predictor import DEFAULT_MODEL, Predictor
from agegender.serving.saved import read_info

log = logging.getLogger("predict")
INTERRUPTED = 130  # the shell's status for a run stopped by Ctrl-C


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = commands.parser(
        "agegender-predict",
        "Predict age and gender for the faces in images (files, or folders searched recursively). "
        "Exit status: 0 all files used, 1 some file failed, 2 nothing could run, 130 interrupted.")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="saved .keras model (default %(default)s)")
    parser.add_argument("--format", choices=FORMATS, default="csv",
                        help="csv (default) or jsonl: written as records are made; json: one list, "
                             "written at the end")
    parser.add_argument("--output", help="write here instead of standard output")
    parser.add_argument("--resume", action="store_true",
                        help="keep the records already in --output and skip their files (the same "
                             "model and --format)")
    parser.add_argument("--annotate", metavar="DIR",
                        help="also write each photo with its boxes, ages and genders drawn into DIR, "
                             "mirroring the inputs' folders (docs/predict.md); existing pictures "
                             "there are not overwritten (except with --resume)")
    parser.add_argument("--no-detect", action="store_true",
                        help="images are face crops already: use each whole image as one face")
    parser.add_argument("--no-tta", action="store_true",
                        help="skip the mirrored second pass (twice as fast, as evaluated without it)")
    parser.add_argument("--detector", choices=DETECTORS, default="mtcnn",
                        help="mtcnn (default): boxes and five landmarks, faces cut aligned like "
                             "UTKFace's chips; haar: OpenCV's frontal cascade, boxes only, faster")
    parser.add_argument("--detect-max-side", type=_positive(int), default=None,
                        help="search photos for faces shrunk to at most this many pixels "
                             "(default 640 for mtcnn, 800 for haar; larger finds smaller faces, slower)")
    parser.add_argument("--batch-size", type=_positive(int), default=64)
    parser.add_argument("--workers", type=_positive(int), default=None,
                        help="threads decoding and finding faces (default: all cores)")
    parser.add_argument("--max-file-mb", type=_positive(float), default=MAX_FILE_MB,
                        help="larger files are a per-file error, not read (default %(default)s)")
    parser.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                        help="progress bar on standard error: auto (default) when it is a terminal "
                             "and there are several files")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 every file used, 1 some file failed (or its ``--annotate`` picture could not
    be written); 2 (from :func:`console`) nothing could run; 130 interrupted (every record made so far is in the output)."""
    args = build_parser().parse_args(argv)
    if args.resume and not args.output:
        build_parser().error("--resume needs --output (the file to continue)")
    commands.setup_logging(args)
    info = read_info(args.model)  # no TensorFlow yet: a missing or foreign file is said at once
    stamp = ModelStamp.of(args.model, info.family)
    items = expand(args.paths)
    done, earlier = set(), None
    if args.output:
        check_output(args.output, args.paths, [it.source for it in items if isinstance(it.source, Path)])
        if args.resume:
            done, earlier = resume(args.output, args.format, stamp)
            if done:
                log.info("--resume: %d files already in %s, skipped", len(done), args.output)
            items = [it for it in items if it.name not in done]
    annotator = None
    if args.annotate:
        dest = check_annotate(args.annotate, args.paths, items, resume=args.resume)
        annotator = Annotator(items, dest, replace=args.resume,
                              max_bytes=int(args.max_file_mb * 2**20))

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the predictor names the file
    # the detector first: if it cannot run, say so before the model takes seconds to load
    detector = "mtcnn" if args.no_detect else make_detector(args.detector, args.detect_max_side)
    predictor = Predictor(args.model, detector=detector, batch_size=args.batch_size,
                          tta=not args.no_tta, workers=args.workers, max_file_mb=args.max_file_mb)
    writer = Writer(args.output, args.format, stamp, earlier=earlier)
    show = {"on": True, "off": False}.get(args.progress, sys.stderr.isatty() and len(items) > 1)
    counts = _Counts()
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _progress(len(items), show and not args.quiet) as bar:
            for batch in predictor.iter_batches(items, detect=not args.no_detect):
                with stop.deferred():  # a batch is written and counted whole, or not at all
                    writer.write(batch)
                    bar.update(counts.add(batch))
                    for problem in annotator.write(batch) if annotator else []:
                        log.warning("%s", problem)
                        counts.unpictured += 1
    except KeyboardInterrupt:
        writer.close()
        log.warning("interrupted after %d files: their records are in %s; rerun with --resume "
                    "to go on", len(counts.files), args.output or "standard output")
        return INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    writer.close()
    log.info("%d files, %d faces, %d failed (model %s, %s, predicting in %s)", len(counts.files),
             counts.faces, len(counts.failed), predictor.info.family, predictor.profile.name,
             predictor.info.precision)
    if annotator:
        log.info("%d pictures written to %s", len(annotator.written), args.annotate)
    return 1 if counts.failed or counts.unpictured else 0


class _Counts:
    """Files, faces and failed files seen so far; each error is logged once, as it comes."""

    def __init__(self):
        self.files, self.failed, self.faces = set(), set(), 0
        self.unpictured = 0  # --annotate pictures that could not be written

    def add(self, batch: list[dict]) -> int:
        before = len(self.files)
        for rec in batch:
            self.files.add(rec["file"])
            if rec["error"]:
                log.warning("%s: %s", rec["file"], rec["error"])
                self.failed.add(rec["file"])
            else:
                self.faces += 1
        return len(self.files) - before


class _Stop:
    """Ctrl-C and `kill` (SIGTERM) stop a run as KeyboardInterrupt, but not inside
    :meth:`deferred`: there the stop waits until the block is done, so a stopped run's output
    ends on a whole batch and the count it reports is the count in the file."""

    def __init__(self):
        self._deferring, self._pending = False, False

    def handle(self, signum, frame):
        if self._deferring:
            self._pending = True
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self):
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if self._pending:
            raise KeyboardInterrupt


def _progress(total: int, show: bool):
    """A tqdm bar of files on standard error (log lines printed above it), or a silent stand-in."""
    if not show:
        class _Silent:
            def update(self, n):
                pass
        return contextlib.nullcontext(_Silent())
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    @contextlib.contextmanager
    def bar():
        with logging_redirect_tqdm(), tqdm(total=total, unit="file", file=sys.stderr,
                                           dynamic_ncols=True) as t:
            yield t
    return bar()


def console(argv: list[str] | None = None) -> int:
    """Entry point of the ``agegender-predict`` console script: a setup problem (no model, no
    detector, a refused output) ends with its message and exit status 2; Ctrl-C before the first
    record with status 130 and one line."""
    try:
        return commands.run("predict", main, argv, error_status=2)
    except KeyboardInterrupt:
        print("predict: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(console())
