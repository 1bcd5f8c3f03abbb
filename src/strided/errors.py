"""The one error family of strided.

Every error the project raises on purpose is a :class:`StridedError`, so a program (and
the command line, in one place) can catch them all with one ``except``.  Where Python has
a fitting built-in type, an error also derives from it (``ValueError`` for a bad value,
``FileNotFoundError`` for a missing file), so ``except ValueError`` keeps working.

Messages name the value or file received and say what was expected or what to do.

Exit codes of the ``strided`` command (see :mod:`strided.cli.errors`):
0 ok, 1 error (a :class:`StridedError`), 2 usage (bad arguments), 130 interrupted.
"""
from __future__ import annotations

__all__ = ["StridedError", "CheckpointError", "ModelFileError", "UnsafeModelFile",
           "DatasetUnavailable", "ImageError"]


class StridedError(Exception):
    """Base of every error strided raises on purpose; its message is meant for users."""


class CheckpointError(StridedError, ValueError):
    """A checkpoint file that is missing, corrupt, truncated or for another model."""


class ModelFileError(CheckpointError):
    """A weight file that is missing, corrupt, truncated, of an unknown layout or for another model."""


class UnsafeModelFile(ModelFileError):
    """A pickle that would import or call something outside the allowed tensor-rebuilding functions."""


class DatasetUnavailable(StridedError, FileNotFoundError):
    """A data set's files are not on this machine; the message says how to get them."""


class ImageError(StridedError, ValueError):
    """An image file that is missing, unreadable, too large, or of a kind strided cannot map to pixels."""
