"""The ``strided`` command line (``strided ...`` or ``python -m strided.cli ...``).

:func:`main` runs it (``main(["train", "--epochs", "1"])`` returns the exit code); the
parser and dispatch are in :mod:`strided.cli.main`, the helpers shared by commands in
:mod:`strided.cli.common`, exit codes and :class:`CLIError` in :mod:`strided.cli.errors`,
and one module per command group: :mod:`~strided.cli.train`, :mod:`~strided.cli.data`,
:mod:`~strided.cli.viz`, :mod:`~strided.cli.edges`.
"""
from .common import default_sample_image
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CLIError
from .main import build_parser, main

__all__ = ["main", "build_parser", "CLIError", "default_sample_image", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE",
           "EXIT_INTERRUPTED"]
