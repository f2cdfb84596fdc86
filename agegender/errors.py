"""The one exception type for problems a user can fix."""
from __future__ import annotations


class UserError(Exception):
    """An expected problem the user can fix: missing data, a bad setting, missing weights offline.

    Command lines end with its one-line message and exit status 1, without a traceback
    (:func:`agegender.commands.run`); anything else is a bug and keeps its traceback.
    """
