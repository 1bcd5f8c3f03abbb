"""Errors and exit codes of the ``strided`` command.

Every error strided raises on purpose is a :class:`strided.errors.StridedError`;
:func:`strided.cli.main.main` catches them in one place and prints one line,
``strided: error: <message>``, on stderr (no traceback).  Exit codes:

====  ===========  ==============================================================
code  name         when
====  ===========  ==============================================================
0     EXIT_OK      the command did what was asked
1     EXIT_ERROR   it failed while running: a file could not be written (disk
                   full, no permission), training diverged, a library error
2     EXIT_USAGE   the command line asks for something that cannot be done: an
                   unknown option or a bad value, a file or run directory named
                   on the command line that is missing, unreadable or of the
                   wrong kind, options that do not go together
130   EXIT_INTERRUPTED  stopped by Ctrl-C (SIGINT); a training run saves its
                   state first and says how to continue it
====  ===========  ==============================================================
"""
from __future__ import annotations

from ..errors import StridedError

__all__ = ["EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED", "CLIError", "Interrupted",
           "EXIT_CODES_HELP"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = ("exit codes: 0 ok, 1 error (something failed while running), 2 usage (bad options, "
                   "or a named file or run that is missing or unusable), 130 interrupted (Ctrl-C)")


class CLIError(StridedError, ValueError):
    """What the command line asks for cannot be done; printed as ``strided: error: ...``.

    ``exit_code`` is :data:`EXIT_USAGE` unless given (``CLIError(msg, exit_code=EXIT_ERROR)``
    for a failure while running).
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


class Interrupted(StridedError):
    """Ctrl-C, with a message saying what was kept and how to go on (exit code 130)."""

    exit_code = EXIT_INTERRUPTED
