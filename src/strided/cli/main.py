"""The ``strided`` command: the parser, the dispatch and the one place errors are handled.

Each command group is a module with ``register(subparsers)`` (adds its parsers, each with
``set_defaults(func=cmd_...)``) and ``cmd_<name>(args) -> int`` functions:
:mod:`~strided.cli.train` (train, evaluate, predict), :mod:`~strided.cli.data`,
:mod:`~strided.cli.viz`, :mod:`~strided.cli.edges` and :mod:`~strided.cli.face`.  To add a command group, write such a
module and add it to :data:`COMMAND_MODULES`.

:func:`main` returns the exit code (see :mod:`strided.cli.errors`): 0 ok, 1 error, 2 usage,
130 interrupted.  Every :class:`~strided.errors.StridedError` (and an ``OSError`` such as a
full disk) is printed as one line, ``strided: error: <message>``, on stderr, without a
traceback; Ctrl-C prints ``strided: interrupted`` and exits 130.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from .errors import (EXIT_CODES_HELP, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CLIError,
                     Interrupted)

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

COMMAND_MODULES = ("train", "detect", "edges", "data", "models", "viz", "face", "stylize", "bench")      # strided.cli.<name>, in the order of --help


def build_parser() -> argparse.ArgumentParser:
    """The ``strided`` argument parser, one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="strided",
        description="Convolutional neural networks from scratch, made real.",
        epilog=EXIT_CODES_HELP,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(subparsers)
    return parser


def _error(message: str) -> None:
    print(f"strided: error: {message}", file=sys.stderr, flush=True)


def _describe_os_error(exc: OSError) -> str:
    import errno

    what = exc.strerror or str(exc)
    name = exc.filename if exc.filename is not None else None
    text = f"{what}: {str(name)!r}" if name is not None else what
    if exc.errno == errno.ENOSPC:
        text += " (the disk is full: free some space and run the command again)"
    return text


def _ignore_further_interrupts(program: bool) -> None:
    """Once a Ctrl-C is being handled, a second one must not print a traceback or the
    "Exception ignored ... KeyboardInterrupt" noise while Python shuts down: as a program
    (``argv`` not given), SIGINT is ignored from here on; called from Python, nothing changes."""
    if program:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:           # not the main thread
            pass


def main(argv=None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``, as the ``strided`` program); return the exit code."""
    program = argv is None
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse printed usage + message (or --help)
            code = exc.code
            return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
        return int(args.func(args))
    except KeyboardInterrupt:
        _ignore_further_interrupts(program)
        print("strided: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Interrupted as exc:
        _ignore_further_interrupts(program)
        print(f"strided: interrupted {exc}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except CLIError as exc:
        _error(str(exc))
        return exc.exit_code
    except Exception as exc:
        from ..errors import StridedError

        if isinstance(exc, StridedError):
            _error(str(exc))
            return getattr(exc, "exit_code", EXIT_ERROR)
        if isinstance(exc, OSError):
            _error(_describe_os_error(exc))
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
