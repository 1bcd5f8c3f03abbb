"""Errors of :mod:`strided.data`."""
from __future__ import annotations

__all__ = ["DatasetUnavailable", "DatasetFileError", "UnreadableImagesWarning"]


from ..errors import DatasetUnavailable, StridedError


class DatasetFileError(StridedError, ValueError):
    """A data set file that exists but is not what it should be (not HDF5, wrong contents)."""


class UnreadableImagesWarning(UserWarning):
    """Some image files of a folder data set could not be read and were skipped."""
