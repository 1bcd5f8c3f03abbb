"""Errors of :mod:`strided.data`."""
from __future__ import annotations

__all__ = ["DatasetUnavailable", "UnreadableImagesWarning"]


from ..errors import DatasetUnavailable


class UnreadableImagesWarning(UserWarning):
    """Some image files of a folder data set could not be read and were skipped."""
