"""The one input-error class: every reader and every driver raises it."""

from __future__ import annotations

__all__ = ["DedupInputError", "InputError"]


class DedupInputError(ValueError):
    """Input that cannot be read or clustered; the message names the file, line or id and
    says the fix. The CLI prints it on one line and exits with code 2."""


# The name readers have always raised: the same class, so one ``except`` catches both.
InputError = DedupInputError
