"""Detectors by name: the one table from a name (``--detector``, ``preprocess.faces``) to its class.

A new detector is a module of :mod:`agegender.faces` with a class meeting
:class:`~agegender.faces.detector.Detector` (``__call__(image) -> list[Face]``, a ``max_side``
keyword: the long side photos are shrunk to before the search) and a row here. The detectors'
modules import their heavy packages (TensorFlow, OpenCV) only when one is built.
"""
from __future__ import annotations

from agegender.faces.detector import Detector
from agegender.faces.haar import HaarDetector
from agegender.faces.mtcnn import MtcnnDetector

DETECTORS: dict[str, type] = {"mtcnn": MtcnnDetector, "haar": HaarDetector}


def make_detector(name: str = "mtcnn", max_side: int | None = None) -> Detector:
    """The detector called ``name`` (:data:`DETECTORS`), searching photos shrunk to ``max_side``
    pixels (default: the detector's own). Raises DetectorUnavailable when it cannot run here."""
    try:
        detector = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r}: choose one of {', '.join(DETECTORS)}") from None
    return detector(max_side=max_side) if max_side else detector()
