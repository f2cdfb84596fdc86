"""The one record of a file that ingest (or the external evaluation) did not use, and the one
place its reasons are counted.

Reasons (the ``reason`` key of ``reports/data_quality.json``'s ``skipped`` list, docs/data.md):
``malformed_name``, ``out_of_range``, ``unreadable_image``, ``duplicate`` for UTKFace, and for
labelled sets also ``bad_label``, ``missing_file``, ``unlabelled`` and ``outside_set``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Skip:
    """One skipped file: ``file`` (its name in the report: a UTKFace base name or a path under
    ``data.extra``), a short ``reason`` key and a ``detail`` sentence naming where and why."""
    file: str
    reason: str
    detail: str

    def as_dict(self) -> dict:
        """``{"file", "reason", "detail"}`` in that order: the report's JSON entry."""
        return {"file": self.file, "reason": self.reason, "detail": self.detail}


def count_reasons(skipped: Iterable[Skip]) -> dict[str, int]:
    """How many files were skipped for each reason, reasons sorted by name."""
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    return dict(sorted(counts.items()))
