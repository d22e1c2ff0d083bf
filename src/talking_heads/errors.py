"""Errors caused by the user's input (a wrong file, a wrong name, a wrong value).

Library code raises :class:`UserError` (or a subclass) with one line that names the file or
value and what is wrong; the command-line boundary prints that line and exits with status 2.
"""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input, reported as one line (exit status 2)."""
