"""Process settings that make NumPy fast on the machines strided targets.

Imported first by ``strided/__init__.py``, before NumPy:

* **AVX-512 GEMM.** OpenBLAS picks its AVX2 (Haswell) kernel on AMD Zen 4/5
  even where AVX-512 is there; ``OPENBLAS_CORETYPE=SkylakeX`` selects the
  AVX-512 kernel (about 1.9x faster GEMM).  Set only when the CPU reports
  ``avx512f`` and the user has not chosen a core type, and only if NumPy is
  not imported yet (OpenBLAS reads it once, at load).
* **Quiet BLAS threads.** After a GEMM, OpenBLAS's worker threads spin for
  about 2^28 cycles waiting for more work, and on a 2-core machine they steal
  the core that strided's own threads (copies, pooling, batch norm) need next.
  ``OPENBLAS_THREAD_TIMEOUT=4`` lets them sleep almost at once.
* **Buffer reuse.** glibc returns large freed blocks to the kernel (mmap), so
  the next same-sized buffer costs page faults (milliseconds for tens of MB).
  ``mallopt`` keeps freed memory in the heap for reuse instead.

Set ``STRIDED_NO_TUNING=1`` to leave the process untouched.
"""
from __future__ import annotations

import os
import sys

applied: dict = {}


def _cpu_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split()
    except OSError:
        pass
    return False


def tune() -> None:
    if os.environ.get("STRIDED_NO_TUNING"):
        return
    if "numpy" not in sys.modules:
        if "OPENBLAS_CORETYPE" not in os.environ and _cpu_has("avx512f"):
            os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
            applied["OPENBLAS_CORETYPE"] = "SkylakeX"
        if "OPENBLAS_THREAD_TIMEOUT" not in os.environ:
            os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
            applied["OPENBLAS_THREAD_TIMEOUT"] = "4"
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL("libc.so.6")
            M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
            ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
            applied["mallopt"] = ok
        except (OSError, AttributeError):
            applied["mallopt"] = False


tune()
