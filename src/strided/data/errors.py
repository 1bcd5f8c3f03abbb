"""Errors of :mod:`strided.data`."""
from __future__ import annotations

__all__ = ["DatasetUnavailable", "UnreadableImagesWarning"]


class DatasetUnavailable(FileNotFoundError):
    """A data set's files are not on this machine; the message says how to get them."""


class UnreadableImagesWarning(UserWarning):
    """Some image files of a folder data set could not be read and were skipped."""
