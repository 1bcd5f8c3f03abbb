"""Writing files so that nothing a user has is ever half-overwritten.

:func:`atomic_write` writes to a temporary file beside the target, flushes it to disk and
``os.replace``-s it over the target in one step: a crash, ``kill -9`` or Ctrl-C mid-write
leaves either the old file or the new one, never a mix.

Temporary files are named ``.<target name>.strided-tmp-<pid>-<random>`` so they are easy to
recognise.  They are removed on any exception; a ``kill -9`` cannot run that cleanup, so the
next save to the same target removes stale temporaries whose writing process is gone (no such
process, or a zombie).  A temporary that a live process -- this one included -- is still
writing is left alone.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "temp_name_prefix"]

TMP_MARK = ".strided-tmp-"

# Temporaries this process is writing now (another thread, or a save inside a save).
_writing: set = set()
_writing_lock = threading.Lock()


def temp_name_prefix(path) -> str:
    """The name every temporary file for ``path`` starts with (``.<name>.strided-tmp-``)."""
    return f".{Path(path).name}{TMP_MARK}"


def _pid_alive(pid: int) -> bool:
    """True if process ``pid`` runs (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # someone else's process: alive
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True              # no /proc (macOS): trust kill(pid, 0)
    return state not in (b"Z", b"X")


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporaries for ``path`` left by writers that no longer run (``kill -9``)."""
    prefix = temp_name_prefix(path)
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for stale in candidates:
        pid_text = stale.name[len(prefix):].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) == os.getpid():
            with _writing_lock:
                if str(stale) in _writing:
                    continue     # this process is writing it right now
        elif pid_text.isdigit() and _pid_alive(int(pid_text)):
            continue     # another live process is writing it right now
        try:
            stale.unlink()
        except OSError:
            pass


def atomic_write(path, write) -> Path:
    """Create or replace ``path`` atomically; ``write(tmp_path)`` writes the content.

    ``write`` receives the temporary file's path (a ``str``) and must write the whole file
    there.  Parent folders are created.  Returns ``Path(path)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = path.parent / f"{temp_name_prefix(path)}{os.getpid()}-{secrets.token_hex(4)}"
    with _writing_lock:
        _writing.add(str(tmp))
    try:
        write(str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename in (None, str(tmp)):   # name the file the user asked for
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    finally:
        with _writing_lock:
            _writing.discard(str(tmp))
    return path


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path, data, indent: int = 2) -> Path:
    """Write ``data`` as strict JSON (no NaN/Infinity: they raise ``ValueError``) atomically."""
    text = json.dumps(data, indent=indent, allow_nan=False)
    return atomic_write_text(path, text + "\n")
