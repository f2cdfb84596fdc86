"""UTKFace labels: parsing ``age_gender_race_date.jpg.chip.jpg`` file names and checking their ranges.

The real archive holds a few names that break the pattern (a missing field, a space before the
extension, a missing dot). They are reported, never repaired: a guess at a label is worse than a
skipped image.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

NAME_PATTERN = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)\.jpg\.chip\.jpg$")

AGE_RANGE = (0, 116)
GENDERS = {0: "male", 1: "female"}
RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
# Labelled sets of your own may leave race out (agegender/data/labelled.py): code -1. UTKFace names
# always carry a race, so a run on UTKFace alone never has it.
UNKNOWN_RACE = -1
RACE_NAMES = {**RACES, UNKNOWN_RACE: "Unknown"}


class LabelError(ValueError):
    """A file name whose labels cannot be trusted. ``reason`` is a short key for reports."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Labels:
    age: int
    gender: int
    race: int


def parse_filename(name: str) -> Labels:
    """Parse the labels out of a UTKFace file name (a base name, not a path).

    Raises ``LabelError`` with reason ``malformed_name`` when the name does not follow
    ``age_gender_race_date.jpg.chip.jpg`` and ``out_of_range`` when a label is outside
    age 0-116, gender 0/1 or race 0-4.
    """
    match = NAME_PATTERN.match(name)
    if match is None:
        raise LabelError("malformed_name", f"{name!r}: {_describe_malformed(name)}")
    age, gender, race = (int(match.group(i)) for i in (1, 2, 3))
    if not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        raise LabelError("out_of_range", f"{name!r}: age {age} outside {AGE_RANGE[0]}-{AGE_RANGE[1]}")
    if gender not in GENDERS:
        raise LabelError("out_of_range", f"{name!r}: gender {gender} is not 0 (male) or 1 (female)")
    if race not in RACES:
        raise LabelError("out_of_range", f"{name!r}: race {race} outside 0-4")
    return Labels(age, gender, race)


def _describe_malformed(name: str) -> str:
    """Say which of the known defects a name has, so the report is readable."""
    if " " in name:
        return "contains a space (expected age_gender_race_date.jpg.chip.jpg)"
    if not name.endswith(".jpg.chip.jpg"):
        return "does not end in '.jpg.chip.jpg'"
    stem = name[: -len(".jpg.chip.jpg")]
    fields = stem.split("_")
    if len(fields) != 4:
        return f"has {len(fields)} underscore-separated fields, expected 4 (age_gender_race_date)"
    return "fields are not all whole numbers"
