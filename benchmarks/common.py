"""Shared helpers for the strided-vs-PyTorch benchmarks.

* :func:`load_runtime` imports ``strided`` *before* NumPy and torch (strided sets
  ``OPENBLAS_CORETYPE=SkylakeX`` on AVX-512 CPUs, which OpenBLAS reads once, when
  NumPy loads), then sets one thread count for all three thread pools:
  ``torch.set_num_threads(n)``, ``strided.functional.set_num_threads(n)`` and,
  where the symbol can be found, OpenBLAS's own ``openblas_set_num_threads(n)``.
* :func:`measure_interleaved` times two implementations of one case in one process,
  alternating them (strided, torch, strided, torch, ...), and keeps every sample.
* :func:`format_table` / :func:`print_table` render a markdown table, and
  :func:`write_results` writes (or appends) it with a header describing the machine.
* The harness every strided-vs-torch script shares: :func:`make_parser` (the common
  options), :func:`parse_positive_ints` (``--batch-sizes`` / ``--sizes``), :func:`start`
  (runtime + environment lines), :func:`quiet_gate`, :func:`settings_line`,
  :func:`print_error`, :func:`missed_targets` and :func:`finish` (gate summary, table,
  notes, markdown file).

This module imports only the standard library at import time, so importing it never
loads NumPy before strided.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import gc
import glob
import os
import platform
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUNTIME: dict = {}


# --------------------------------------------------------------------------- runtime setup
def import_strided():
    """``import strided`` (the installed package, else ``<repo>/src``), before NumPy."""
    if "numpy" in sys.modules and "strided" not in sys.modules:
        print("warning: NumPy was imported before strided; OPENBLAS_CORETYPE tuning may not apply",
              file=sys.stderr)
    try:
        import strided
    except ImportError:
        sys.path.insert(0, os.path.join(REPO_ROOT, "src"))
        import strided
    return strided


def _openblas_lib():
    """ctypes handle on the OpenBLAS that NumPy loaded, and the symbol suffix/prefix it uses."""
    import numpy as np
    base = os.path.dirname(np.__file__)
    candidates = glob.glob(os.path.join(base, "..", "numpy.libs", "*openblas*")) + \
        glob.glob(os.path.join(base, ".dylibs", "*openblas*"))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_", "64_"), ("scipy_", ""), ("", "64_"), ("", "")):
            if hasattr(lib, f"{prefix}openblas_get_num_threads{suffix}"):
                return lib, prefix, suffix
    return None, "", ""


def openblas_info() -> dict:
    """Core name, config string and thread count of NumPy's OpenBLAS (best effort)."""
    lib, prefix, suffix = _openblas_lib()
    info = {"coretype_env": os.environ.get("OPENBLAS_CORETYPE", "(unset)")}
    if lib is None:
        return info
    for key, name in (("corename", "openblas_get_corename"), ("config", "openblas_get_config")):
        fn = getattr(lib, f"{prefix}{name}{suffix}", None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            info[key] = fn().decode()
    info["threads"] = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}")()
    return info


def set_openblas_threads(n: int) -> bool:
    lib, prefix, suffix = _openblas_lib()
    fn = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None) if lib is not None else None
    if fn is None:
        return False
    fn(int(n))
    return True


def load_runtime(threads: int):
    """Import strided, then NumPy and torch; set ``threads`` everywhere.  Returns (sd, np, torch)."""
    sd = import_strided()
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    sd.functional.set_num_threads(threads)
    blas_set = set_openblas_threads(threads)
    _RUNTIME.update(sd=sd, np=np, torch=torch, threads=threads, blas_set=blas_set)
    return sd, np, torch


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--repeats", type=int, default=7,
                        help="timed runs of each side per case, interleaved (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each side first (default 2)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for torch, strided and OpenBLAS (default: os.cpu_count())")
    parser.add_argument("--markdown", metavar="PATH", help="write the results table to this markdown file")
    parser.add_argument("--append", action="store_true", help="append to --markdown PATH instead of overwriting")
    parser.add_argument("--json", metavar="PATH",
                        help="also write the table as JSON (title, header, rows, notes; read by run_all.py)")
    parser.add_argument("--settle", type=float, default=0.15,
                        help="before each timed run, run the same side untimed for this many seconds, so "
                             "the other library's idle threads stop spinning (default 0.15; 0 = off)")
    parser.add_argument("--no-gate", action="store_true",
                        help="do not wait for a quiet machine before each timed round")
    return parser


def make_parser(doc: str) -> argparse.ArgumentParser:
    """A script's parser: the first paragraph of its docstring ``doc`` as description (the
    rest shown verbatim) and the options of :func:`add_common_args`."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_common_args(parser)


def parse_positive_ints(parser: argparse.ArgumentParser, text: str, option: str, multiple_of: int = 1) -> list[int]:
    """``"64,256"`` -> ``[64, 256]``: comma-separated positive ints, each a multiple of
    ``multiple_of``; anything else (or nothing) is a ``parser.error`` naming ``option``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
        if not values or any(v <= 0 or v % multiple_of for v in values):
            raise ValueError
    except ValueError:
        what = "positive ints" if multiple_of == 1 else f"positive multiples of {multiple_of}"
        parser.error(f"{option} must be {what} separated by commas, received {text!r}")
    return values


def start(threads: int):
    """:func:`load_runtime`, then print :func:`environment_lines`.  Returns (sd, np, torch)."""
    sd, np, torch = load_runtime(threads)
    for line in environment_lines():
        print(line)
    return sd, np, torch


# --------------------------------------------------------------------------- machine description
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split()
    except OSError:
        pass
    return False


def environment_lines() -> list[str]:
    """One line per fact about the run: date, CPU, versions, BLAS, threads."""
    np, torch, sd = _RUNTIME["np"], _RUNTIME["torch"], _RUNTIME["sd"]
    blas = openblas_info()
    blas_desc = blas.get("corename", "?")
    if "threads" in blas:
        blas_desc += f", {blas['threads']} threads"
    runtime = getattr(getattr(sd, "_runtime", None), "applied", {})
    return [
        f"date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {cpu_model()} ({os.cpu_count()} logical CPUs, avx512f={'yes' if cpu_has('avx512f') else 'no'}), "
        f"{platform.system()} {platform.release()}",
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"strided {getattr(sd, '__version__', '?')}",
        f"OPENBLAS_CORETYPE={blas['coretype_env']} (OpenBLAS core in use: {blas_desc}); "
        f"strided runtime tuning: {runtime or 'none'}",
        f"threads: torch {torch.get_num_threads()}, strided {sd.functional.get_num_threads()}, "
        f"OpenBLAS {blas.get('threads', 'default')} (requested {_RUNTIME['threads']})",
    ]


# --------------------------------------------------------------------------- timing
@dataclass
class Samples:
    """Per-phase timings (seconds) of one implementation."""
    phases: dict = field(default_factory=dict)
    redone: int = 0      # timed rounds discarded because the machine was busy
    noisy: int = 0       # rounds kept although the machine was busy (redo budget spent)

    def add(self, result: dict) -> None:
        for key, value in result.items():
            self.phases.setdefault(key, []).append(value)

    def median_ms(self, phase: str = "total") -> float:
        return 1e3 * statistics.median(self.phases[phase])

    def min_ms(self, phase: str = "total") -> float:
        return 1e3 * min(self.phases[phase])


def timed(fn: Callable[[], None]) -> Callable[[], dict]:
    """Wrap a no-argument callable as a step returning ``{"total": seconds}``."""
    def step():
        t0 = time.perf_counter()
        fn()
        return {"total": time.perf_counter() - t0}
    return step


class QuietGate:
    """Waits for the machine to be quiet before a timed round, and judges it afterwards.

    On this shared virtual machine the second CPU is at times contended for seconds:
    then every hand-over between two threads can wait for a scheduler tick (4 ms), and
    2-thread code runs 2-15x slower, by a factor that depends on how often it
    synchronises (so differently for the two libraries: the ratio means nothing then).

    The probe times 20 additions of 2**17 floats twice: with NumPy (one thread, no
    hand-over) and with torch on its threads (20 hand-overs).  When quiet the threaded
    one takes about 0.6x the single-threaded one (about 0.2 ms).  The machine counts as
    quiet when the threaded probe is no slower than the single-threaded one (a test that
    needs no calibration) and within ``tolerance`` of the best threaded probe seen in
    this process (which catches milder contention).  Each probe is a median of 5.
    """

    def __init__(self, np, torch, tolerance: float = 2.0, max_wait: float = 30.0, calibrate: float = 1.0):
        self.torch, self.tolerance, self.max_wait = torch, tolerance, max_wait
        n = 1 << 17  # above torch's grain size (32768): each add is split over the threads
        self._a, self._b, self._c = torch.randn(n), torch.randn(n), torch.empty(n)
        self._an, self._bn, self._cn = (np.array(t.numpy()) for t in (self._a, self._b, self._c))
        self._np_add = np.add
        self.best = float("inf")
        self.waited = 0.0
        end = time.perf_counter() + calibrate
        while time.perf_counter() < end:
            self.probe()

    def probe(self) -> tuple:
        """(threaded, single-threaded) probe times in seconds; updates the best threaded time."""
        t_add, a, b, c = self.torch.add, self._a, self._b, self._c
        n_add, an, bn, cn = self._np_add, self._an, self._bn, self._cn
        threaded, single = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(20):
                n_add(an, bn, out=cn)
            t1 = time.perf_counter()
            for _ in range(20):
                t_add(a, b, out=c)
            t2 = time.perf_counter()
            single.append(t1 - t0)
            threaded.append(t2 - t1)
        t2, t1 = statistics.median(threaded), statistics.median(single)
        self.best = min(self.best, t2)
        return t2, t1

    def quiet(self) -> bool:
        threaded, single = self.probe()
        handover_ok = threaded <= single or self.torch.get_num_threads() == 1
        return handover_ok and threaded <= self.tolerance * self.best

    def wait(self, deadline: float | None = None) -> bool:
        """Block until quiet; give up (False) at ``deadline`` (a ``perf_counter`` time)."""
        start = time.perf_counter()
        if deadline is None:
            deadline = start + self.max_wait
        try:
            while not self.quiet():
                if time.perf_counter() >= deadline:
                    return False
                time.sleep(0.2)
            return True
        finally:
            self.waited += time.perf_counter() - start


def measure_interleaved(steps: dict, repeats: int = 7, warmup: int = 2,
                        before: Callable[[str], None] | None = None, settle: float = 0.15,
                        gate: QuietGate | None = None, max_redo: int | None = None) -> dict:
    """Time several implementations of one case, alternating them run by run.

    ``steps`` maps a name ("strided", "torch") to a callable that runs the case once
    and returns ``{phase: seconds}`` (at least ``"total"``; it times itself so that it
    can report phases such as ``"fwd"``).  ``before(name)``, if given, runs untimed
    before every call (resetting gradients, for example).

    Order: ``warmup`` rounds, then ``repeats`` timed rounds; a round runs every step in
    the given order, so the two sides alternate: strided, torch, strided, torch, ...

    **Settling.**  Both libraries keep idle worker threads spinning after they finish
    (OpenBLAS about 0.1 s after each GEMM, torch's OpenMP pool about 10 ms).  On two
    cores a spinning thread of one library takes a core from the other one's next run.
    So before each *timed* call its own step is run, untimed, until ``settle`` seconds
    have passed (at least once): the other library's threads have gone to sleep, and
    the timed call sees the state of a loop running only this library (caches and
    thread pools warm), as in training.  Sleeping instead would let the virtual CPUs go
    idle, which on this machine makes the next call's thread wake-ups slow.

    **Gate.**  With a :class:`QuietGate`, a timed round starts only once the machine is
    quiet, and a round after which it no longer is gets discarded and run again (at
    most ``max_redo`` times in all, default ``repeats``); waiting for quiet is given up
    after ``gate.max_wait`` seconds in all for this case.

    The garbage collector runs before each call's settling and is disabled until the
    timed call ends.  Returns ``{name: Samples}`` for the timed rounds;
    ``Samples.redone`` / ``Samples.noisy`` count discarded rounds and rounds kept
    although the gate said the machine was busy (redo budget spent or wait timed out).
    """
    samples = {name: Samples() for name in steps}
    redo_left = repeats if max_redo is None else max_redo
    redone = noisy = timed_rounds = round_index = 0
    deadline = time.perf_counter() + (gate.max_wait if gate is not None else 0.0)
    while timed_rounds < repeats:
        timing = round_index >= warmup
        round_index += 1
        quiet_before = gate.wait(deadline) if (gate is not None and timing) else True
        results = {}
        for name, step in steps.items():
            gc.collect()
            gc.disable()
            try:
                if timing and settle > 0:
                    end = time.perf_counter() + settle
                    while True:
                        if before is not None:
                            before(name)
                        step()
                        if time.perf_counter() >= end:
                            break
                if before is not None:
                    before(name)
                results[name] = step()
            finally:
                gc.enable()
        if not timing:
            continue
        if gate is not None and not (quiet_before and gate.quiet()):
            if redo_left > 0:
                redo_left -= 1
                redone += 1
                continue
            noisy += 1
        for name, result in results.items():
            samples[name].add(result)
        timed_rounds += 1
    for s in samples.values():
        s.redone, s.noisy = redone, noisy
    return samples


def quiet_gate(args, np, torch) -> QuietGate | None:
    """A calibrated :class:`QuietGate`, or ``None`` with ``--no-gate``."""
    return None if args.no_gate else QuietGate(np, torch)


def settings_line(args, gate: QuietGate | None, before_each: bool = False) -> str:
    """``repeats 7 (interleaved, median), warm-up 2, settle 0.15 s[ before each timed run], quiet gate on``."""
    return (f"repeats {args.repeats} (interleaved, median), warm-up {args.warmup}, settle {args.settle} s"
            f"{' before each timed run' if before_each else ''}, quiet gate {'off' if gate is None else 'on'}")


def print_error(label: str) -> str:
    """Print the exception being handled as ``[label] ERROR`` and its traceback on stderr; returns the traceback."""
    tb = traceback.format_exc()
    print(f"[{label}] ERROR\n{tb}", file=sys.stderr, flush=True)
    return tb


# --------------------------------------------------------------------------- tables
def rel_err(np, a, b) -> float:
    """max|strided - torch| / max|torch|, in float64 (``np`` is NumPy, passed in so that this
    module never imports it before strided)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: strided {a.shape} vs torch {b.shape}")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def verdict(ratio: float | None, target: float | None) -> str:
    if target is None:
        return ""
    if ratio is None:
        return f"<= {target:g} (ERROR)"
    return f"<= {target:g} ({'met' if ratio <= target else 'MISSED'})"


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table with aligned columns (first column left, the rest right)."""
    cells = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    sep = "|" + "|".join([":" + "-" * (widths[0] + 1)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def print_table(header: list[str], rows: list[list[str]]) -> str:
    table = format_table(header, rows)
    print(table, flush=True)
    return table


def write_results(path: str, title: str, table: str, notes: list[str] | None = None,
                  append: bool = False) -> None:
    """Write (or append) a markdown section: title, environment, table, notes."""
    lines = [f"## {title}", ""]
    lines += [f"- {line}" for line in environment_lines()]
    lines += ["", table, ""]
    if notes:
        lines += [f"{n}" for n in notes] + [""]
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = "a" if append and os.path.exists(path) else "w"
    with open(path, mode) as f:
        if mode == "a":
            f.write("\n")
        f.write("\n".join(lines))
    print(f"\nwrote {path} ({'appended' if mode == 'a' else 'new file'})")


def missed_targets(rows: list[list[str]], column: int = 4) -> str:
    """The note ``Missed targets: a; b.`` (or ``none``): the rows whose ``column`` (the
    :func:`verdict`) says MISSED or ERROR."""
    missed = [r[0] for r in rows if "MISSED" in r[column] or "ERROR" in r[column]]
    return "Missed targets: " + ("; ".join(missed) if missed else "none") + "."


def finish(args, title: str, header: list[str], rows: list[list[str]], notes: list[str],
           gate: QuietGate | None = None, shown_notes: list[str] | None = None) -> str:
    """The end of a benchmark: the quiet gate's summary, the table, the notes (``shown_notes``
    if given, else all of them), and with ``--markdown`` the file (table and all ``notes``).
    Returns the table."""
    if gate is not None:
        print(f"\nquiet gate: waited {gate.waited:.1f} s in all; best threaded probe {gate.best * 1e3:.3f} ms")
    print()
    table = print_table(header, rows)
    print("\n" + "\n".join(notes if shown_notes is None else shown_notes))
    if args.markdown:
        write_results(args.markdown, title, table, notes, append=args.append)
    if getattr(args, "json", None):
        write_json(args.json, title, header, rows, notes)
    return table


def write_json(path: str, title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> None:
    """The table of :func:`finish` as ``{"title", "header", "rows", "notes", "environment"}`` (cells as printed)."""
    import json
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"title": title, "header": list(header), "rows": [list(map(str, r)) for r in rows],
                   "notes": list(notes), "environment": environment_lines()}, f, indent=1)
