"""The two errors every reader in :mod:`strided.io` raises.

* :class:`ModelFileError` -- the file is missing, truncated, corrupt, not in the
  format the reader expects, or holds weights that do not fit the model.  It is a
  :class:`strided.checkpoint.CheckpointError` (hence a ``ValueError``), so one
  ``except`` catches every weight-file problem of the project.
* :class:`UnsafeModelFile` -- a pickle-based file (PyTorch) asks for something
  that is not a plain tensor-rebuilding function: loading it would mean running
  code chosen by whoever wrote the file.  Nothing is run; the reader stops.

Messages start with the file name and say what is wrong with it.
"""
from __future__ import annotations

from ..errors import ModelFileError, UnsafeModelFile

__all__ = ["ModelFileError", "UnsafeModelFile"]
