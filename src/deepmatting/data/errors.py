"""The error every reader, converter and dataset raises for bad input data."""

from __future__ import annotations


class DatasetError(ValueError):
    """Bad input data: a missing, unreadable or malformed file or array, or a dataset folder laid out wrongly.

    The message names the file(s), folder or argument, the problem, and how to fix it.
    """
